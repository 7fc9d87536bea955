/**
 * A local OpenAI-compatible server (node:http) that speaks `/v1/chat/completions` and `/v1/completions` the
 * way vLLM does, with scripted replies: for tests and benchmarks that need a policy or a judge without a
 * model. It validates request bodies, honours `stop` (cut at the first stop string, kept only with vLLM's
 * `include_stop_str_in_output`), reports per-token logprobs and, with `return_tokens_as_token_ids`, tokens
 * as `token_id:N`. Tokens are UTF-8 bytes unless an encoder is given. Latency and HTTP failures can be
 * injected.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ScriptedRequest {
  endpoint: 'chat' | 'completions';
  body: Record<string, unknown>;
  /** Chat: the messages; completions: the prompt as text when it was sent as text. */
  messages?: Array<{ role: string; content: string }>;
  prompt?: string | number[];
}

export interface ScriptedReply {
  text: string;
  /** Native tool calls (chat only), as an OpenAI server returns them. */
  toolCalls?: Array<{ name: string; arguments: string }>;
  /** Per-token logprob; default -0.5. */
  logprob?: number;
  delayMs?: number;
}

export interface TestServerOptions {
  reply: (req: ScriptedRequest) => ScriptedReply | string | Promise<ScriptedReply | string>;
  /** Tokenizer for token counts, `max_tokens` cuts and token ids; default UTF-8 bytes. */
  encode?: (text: string) => number[];
  decode?: (ids: number[]) => string;
}

export interface OpenAITestServer {
  readonly baseURL: string;
  readonly requests: ScriptedRequest[];
  /** The next `count` requests fail with this HTTP status (e.g. 429, 500). */
  failNext(status: number, count?: number): void;
  close(): Promise<void>;
}

const byteEncode = (text: string): number[] => [...Buffer.from(text, 'utf8')];

function send(res: ServerResponse, status: number, body: unknown): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

function badRequest(res: ServerResponse, message: string): void {
  send(res, 400, { error: { message, type: 'invalid_request_error', code: null } });
}

function applyStop(text: string, stop: unknown, keep: boolean): { text: string; stopped: boolean } {
  const stops = typeof stop === 'string' ? [stop] : Array.isArray(stop) ? (stop as string[]) : [];
  let cut = -1;
  let hit = '';
  for (const s of stops) {
    const at = text.indexOf(s);
    if (at !== -1 && (cut === -1 || at < cut)) {
      cut = at;
      hit = s;
    }
  }
  if (cut === -1) return { text, stopped: false };
  return { text: text.slice(0, keep ? cut + hit.length : cut), stopped: true };
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

export async function startOpenAITestServer(options: TestServerOptions): Promise<OpenAITestServer> {
  const encode = options.encode ?? byteEncode;
  const decode = options.decode ?? ((ids: number[]): string => Buffer.from(ids).toString('utf8'));
  const requests: ScriptedRequest[] = [];
  let failures: { status: number; left: number } = { status: 0, left: 0 };
  let counter = 0;

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const endpoint =
      req.url === '/v1/chat/completions' ? 'chat' : req.url === '/v1/completions' ? 'completions' : null;
    if (req.method !== 'POST' || endpoint === null) {
      send(res, 404, { error: { message: `no route ${req.method} ${req.url}`, type: 'not_found' } });
      return;
    }
    let body: Record<string, unknown>;
    try {
      body = (await readJson(req)) as Record<string, unknown>;
    } catch {
      badRequest(res, 'body is not JSON');
      return;
    }
    if (failures.left > 0) {
      failures.left -= 1;
      send(res, failures.status, { error: { message: 'injected failure', type: 'server_error' } });
      return;
    }
    if (typeof body.model !== 'string' || body.model === '') return badRequest(res, '"model" is required');
    const scripted: ScriptedRequest = { endpoint, body };
    if (endpoint === 'chat') {
      const messages = body.messages;
      if (!Array.isArray(messages) || messages.length === 0)
        return badRequest(res, '"messages" must be a list');
      for (const m of messages as Array<Record<string, unknown>>) {
        if (typeof m.role !== 'string') return badRequest(res, 'every message needs a "role"');
        if (m.role !== 'assistant' && typeof m.content !== 'string')
          return badRequest(res, `a ${m.role} message needs string "content"`);
      }
      scripted.messages = messages as Array<{ role: string; content: string }>;
    } else {
      const prompt = body.prompt;
      const isIds = Array.isArray(prompt) && prompt.every((t) => Number.isInteger(t));
      if (typeof prompt !== 'string' && !isIds)
        return badRequest(res, '"prompt" must be a string or token ids');
      scripted.prompt = prompt as string | number[];
    }
    requests.push(scripted);
    const raw = await options.reply(scripted);
    const reply: ScriptedReply = typeof raw === 'string' ? { text: raw } : raw;
    if (reply.delayMs !== undefined && reply.delayMs > 0)
      await new Promise((r) => setTimeout(r, reply.delayMs));

    const { text, stopped } = applyStop(reply.text, body.stop, body.include_stop_str_in_output === true);
    const maxTokens = typeof body.max_tokens === 'number' ? body.max_tokens : Infinity;
    let ids = encode(text);
    let finish: 'stop' | 'length' | 'tool_calls' = stopped || ids.length <= maxTokens ? 'stop' : 'length';
    let outText = text;
    if (ids.length > maxTokens) {
      ids = ids.slice(0, maxTokens);
      outText = decode(ids);
      finish = 'length';
    }
    const created = Math.floor(Date.now() / 1000);
    const id = `cmpl-${++counter}`;
    const usage = { prompt_tokens: 1, completion_tokens: ids.length, total_tokens: ids.length + 1 };
    if (endpoint === 'chat') {
      const toolCalls = reply.toolCalls?.map((c, i) => ({
        id: `call_${counter}_${i}`,
        type: 'function',
        function: { name: c.name, arguments: c.arguments },
      }));
      if (toolCalls !== undefined && toolCalls.length > 0) finish = 'tool_calls';
      send(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: outText,
              ...(toolCalls === undefined ? {} : { tool_calls: toolCalls }),
            },
            logprobs: null,
            finish_reason: finish,
          },
        ],
        usage,
      });
      return;
    }
    const asIds = body.return_tokens_as_token_ids === true;
    const logprob = reply.logprob ?? -0.5;
    send(res, 200, {
      id,
      object: 'text_completion',
      created,
      model: body.model,
      choices: [
        {
          index: 0,
          text: outText,
          finish_reason: finish,
          logprobs:
            body.logprobs === undefined || body.logprobs === null
              ? null
              : {
                  tokens: ids.map((t) => (asIds ? `token_id:${t}` : String(t))),
                  token_logprobs: ids.map(() => logprob),
                  top_logprobs: null,
                  // Byte tokens: offsets count tokens, which equals characters for ASCII text.
                  text_offset: ids.map((_, i) => i),
                },
        },
      ],
      usage,
    });
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) =>
      send(res, 500, { error: { message: String(err), type: 'server_error' } }),
    );
  });
  // Longer than clients keep idle sockets, so a client never reuses a socket the server is closing.
  server.keepAliveTimeout = 65_000;
  // A deep accept queue: thousands of rollouts connect at once, and a dropped SYN costs seconds of retransmit.
  server.listen({ port: 0, host: '127.0.0.1', backlog: 8192 });
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    baseURL: `http://127.0.0.1:${port}/v1`,
    requests,
    failNext(status: number, count = 1): void {
      failures = { status, left: count };
    },
    async close(): Promise<void> {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
