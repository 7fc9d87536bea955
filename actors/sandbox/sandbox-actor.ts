/**
 * SandboxActor: owns one running sandbox web (world, site, HTTP server) for the cluster. Other actors ask it
 * for the URLs (SearchActors point their Serper backend at `searchUrl`, BrowseActors allow-list `url`),
 * for question rows, and for counters; benchmarks change injection between phases. The server closes
 * when the actor stops.
 */
import { z } from 'zod';
import { DrError } from '../../config/errors.ts';
import type { Actor, ActorFactory } from '../../runtime/actor.ts';
import {
  SANDBOX_PROTOCOL_VERSION,
  sandboxArgsSchema,
  sandboxMessageSchema,
  type SandboxArgs,
  type SandboxErrorReply,
  type SandboxReply,
} from './protocol.ts';
import { generateQuestions, SPLITS, toRow, type QuestionRow, type Split } from './questions.ts';
import { startSandboxServer } from './server.ts';
import { generateWorld } from './world.ts';

function errorReply(code: string, message: string): SandboxErrorReply {
  return { v: SANDBOX_PROTOCOL_VERSION, type: 'sandbox.error', error: { code, message } };
}

export const sandboxActor: ActorFactory<SandboxArgs> = async (rawArgs, ctx): Promise<Actor> => {
  const parsed = sandboxArgsSchema.safeParse(rawArgs);
  if (!parsed.success) {
    throw new DrError('SANDBOX_BAD_OPTIONS', `invalid sandbox actor args: ${z.prettifyError(parsed.error)}`);
  }
  const args = parsed.data;
  const world = generateWorld({ seed: args.seed, size: args.size ?? 1000 });
  const server = await startSandboxServer({
    world,
    port: args.port,
    host: args.host,
    publicUrl: args.publicUrl,
    apiKey: args.apiKey,
    injection: args.injection,
    slowPageMs: args.slowPageMs,
  });
  const rows = new Map<Split, QuestionRow[]>(SPLITS.map((s) => [s, []]));
  for (const q of generateQuestions(world)) rows.get(q.split)?.push(toRow(q));
  ctx.log.info(
    { actor: ctx.self.name, url: server.url, seed: world.seed, size: world.size },
    'sandbox web serving',
  );

  return {
    receive(raw: unknown): SandboxReply {
      const m = sandboxMessageSchema.safeParse(raw);
      if (!m.success)
        return errorReply('SANDBOX_BAD_REQUEST', `bad sandbox message: ${z.prettifyError(m.error)}`);
      const msg = m.data;
      switch (msg.type) {
        case 'sandbox.info':
          return {
            v: 1,
            type: 'sandbox.info.reply',
            url: server.url,
            searchUrl: server.searchUrl,
            bingUrl: server.bingUrl,
            apiKey: server.apiKey,
            seed: world.seed,
            size: world.size,
            pages: server.site.pages.size,
            questions: {
              train: rows.get('train')?.length ?? 0,
              dev: rows.get('dev')?.length ?? 0,
              test: rows.get('test')?.length ?? 0,
            },
          };
        case 'sandbox.stats': {
          const stats = server.stats();
          if (msg.reset === true) server.resetStats();
          return { v: 1, type: 'sandbox.stats.reply', stats };
        }
        case 'sandbox.questions': {
          const all = rows.get(msg.split) ?? [];
          const offset = msg.offset ?? 0;
          return {
            v: 1,
            type: 'sandbox.questions.reply',
            rows: all.slice(offset, offset + (msg.limit ?? all.length)),
            total: all.length,
          };
        }
        case 'sandbox.set_injection':
          server.setInjection(msg.injection);
          return { v: 1, type: 'sandbox.ack' };
      }
    },
    stop: () => server.close(),
  };
};
