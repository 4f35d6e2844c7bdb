// A model from the store (`pocket import`, later `pocket pull`) is served under the
// NAME:TAG it was given, not under its blob's file name: the official openai client lists
// it by that name and a completion that names it is answered by it. Loopback only.
import path from 'node:path';
import { loadOpenAI, startServer, check, eq, done, repo, runPocket, tmpDir } from './lib.mjs';

const OpenAI = loadOpenAI();
const home = tmpDir('pocket-store-');
const env = { POCKET_HOME: home };
const imported = await runPocket(['import', path.join(repo, 'models/default.gguf'), 'kjv:q8'], env);
eq(imported.code, 0, `pocket import: ${imported.stderr}`);

const server = await startServer(['--model', 'kjv:q8', '--max-active', '1'], { env });
const client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
try {
  const ids = (await client.models.list()).data.map((m) => m.id);
  check(ids.includes('kjv:q8'), `models.list: ${ids.join(', ')}`);
  check(!ids.some((id) => id.startsWith('sha256')), `a blob's name is listed: ${ids.join(', ')}`);
  const r = await client.chat.completions.create({
    model: 'kjv:q8', messages: [{ role: 'user', content: 'In the beginning' }], max_tokens: 4,
    temperature: 0,
  });
  eq(r.model, 'kjv:q8', 'the answer names the stored model');
  check(r.choices[0].message.content.length > 0, 'an answer');
} finally {
  await server.stop();
}
done();
