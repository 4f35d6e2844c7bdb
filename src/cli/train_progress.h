// Progress lines of `pocket train`, `pocket repro` and `pocket finetune`
// (stderr), shared by those three commands. Single-threaded: called from the
// train library's callbacks.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>

#include "train/driver.h"

namespace pocket::cli {

// "step 10/300  loss 5.1234  lr 1.00e-03  |g| 1.23  4567 tok/s  eta 1m02s[
// val 4.9876 (ppl 146.9)  checkpoint]"
inline void PrintTrainProgress(const char* command, const train::TrainProgress& p) {
  const long eta = std::lround(p.eta_s);
  std::string line = "pocket " + std::string(command) + ": step " + std::to_string(p.step) + "/" +
                     std::to_string(p.total_steps);
  char buf[256];
  std::snprintf(buf, sizeof(buf), "  loss %.4f  lr %.2e  |g| %.3f  %.0f tok/s  eta %ldm%02lds",
                p.loss, static_cast<double>(p.lr), p.grad_norm, p.tokens_per_s, eta / 60, eta % 60);
  line += buf;
  if (p.has_validation) {
    std::snprintf(buf, sizeof(buf), "  val %.4f (ppl %.2f)", p.validation_loss,
                  std::exp(p.validation_loss));
    line += buf;
  }
  if (p.checkpoint) line += "  checkpoint";
  std::fprintf(stderr, "%s\n", line.c_str());
}

}  // namespace pocket::cli
