/**
 * LearnerActor: one data-parallel learner. It holds the weights and optimizer state (learner.ts), runs a step
 * on its shard when the trainer asks, all-reduces gradients with its peers through their inbox actors, and,
 * as rank 0, publishes every new weight version to the ParameterServerActor. Its inbox actor (kind
 * `learner-inbox`, spawned next to it) only deposits peers' chunks, so it answers while the learner is busy.
 */
import { DrError, isDrError } from '../../config/errors.ts';
import { ActorErrorCode, type Actor, type ActorContext, type ActorFactory } from '../../runtime/actor.ts';
import { publishWeights, WeightSubscriber, type AskFn } from '../params/weight-transfer.ts';
import { encodeWeights, sha256, splitTensors, type TensorSpec } from '../params/weights-codec.ts';
import { ChunkInbox, type CollectivePort } from './allreduce.ts';
import { Learner } from './learner.ts';
import { loadLearnerEngine } from './models.ts';
import {
  chunkMessage,
  LEARNER_PROTOCOL,
  learnerRequest,
  type ExportReply,
  type LearnerArgs,
  type LearnerErrorReply,
  type PublishReply,
  type StepReply,
} from './protocol.ts';

/** Inboxes of the learners hosted in this process, by learner name (the inbox actor runs beside its learner). */
const inboxes = new Map<string, ChunkInbox>();

function inboxOf(learner: string): ChunkInbox {
  let inbox = inboxes.get(learner);
  if (inbox === undefined) {
    inbox = new ChunkInbox();
    inboxes.set(learner, inbox);
  }
  return inbox;
}

export const learnerName = (group: string, rank: number): string => `${group}/${rank}`;
export const inboxName = (group: string, rank: number): string => `${learnerName(group, rank)}/inbox`;

class LearnerActor implements Actor {
  private readonly specs: TensorSpec[];

  constructor(
    private readonly args: LearnerArgs,
    private readonly learner: Learner,
    specs: readonly { name: string; shape: readonly number[] }[],
    private readonly ask: AskFn,
  ) {
    this.specs = specs.map((s) => ({ name: s.name, shape: [...s.shape] }));
  }

  async receive(raw: unknown, ctx: ActorContext): Promise<unknown> {
    const parsed = learnerRequest.safeParse(raw);
    if (!parsed.success) {
      return errorReply(
        new DrError(
          'LEARNER_BAD_MESSAGE',
          `learner got a malformed message: ${parsed.error.issues[0]?.message ?? 'invalid'}; see actors/learner/protocol.ts`,
        ),
      );
    }
    const msg = parsed.data;
    try {
      switch (msg.type) {
        case 'learner.step': {
          const metrics = await this.learner.trainStep(msg.samples, msg.mode, msg.tag);
          const version = this.args.rank === 0 ? await this.publish(metrics.step) : null;
          ctx.log.info(
            { step: metrics.step, loss: metrics.loss, tokensPerSecond: metrics.tokensPerSecond, version },
            'learner step',
          );
          return { metrics, version } satisfies StepReply;
        }
        case 'learner.publish':
          return { version: await this.publish(this.learner.step) } satisfies PublishReply;
        case 'learner.export': {
          const st = this.learner.exportState();
          const { bytes, manifest } = encodeWeights(
            [...this.specs, ...this.specs],
            [...st.optimizer.m, ...st.optimizer.v],
          );
          return {
            step: st.optimizer.step,
            optimizer: { step: st.optimizer.step, bytes, sha256: manifest.sha256 },
          } satisfies ExportReply;
        }
        case 'learner.load': {
          if (sha256(msg.optimizer.bytes) !== msg.optimizer.sha256) {
            throw new DrError(
              'LEARNER_BAD_STATE',
              'optimizer state failed its sha256 check in transit; send it again',
            );
          }
          const sub = new WeightSubscriber(this.ask, this.args.paramServer, {
            chunkBytes: this.args.chunkBytes,
          });
          const w = await sub.refresh();
          if (w === null || w.version !== msg.version) {
            throw new DrError(
              'LEARNER_BAD_STATE',
              `the parameter server holds version ${w?.version ?? -1}, not the requested ${msg.version}; restore the checkpoint there first`,
            );
          }
          const moments = splitTensors([...this.specs, ...this.specs], Uint8Array.from(msg.optimizer.bytes));
          const n = this.specs.length;
          this.learner.loadState({
            weights: w.tensors,
            optimizer: { step: msg.optimizer.step, m: moments.slice(0, n), v: moments.slice(n) },
          });
          return { step: this.learner.step };
        }
      }
    } catch (err) {
      // Refusals are replies, not crashes: a restart would throw away the weights and optimizer state.
      if (err instanceof DrError) return errorReply(err);
      throw err;
    }
  }

  async stop(): Promise<void> {
    inboxes
      .get(learnerName(this.args.group, this.args.rank))
      ?.close(new DrError('LEARNER_STOPPED', 'the learner stopped during a collective'));
    inboxes.delete(learnerName(this.args.group, this.args.rank));
    // onnxruntime holds GBs of native (or device) memory that a stopped actor must give back.
    await this.learner.dispose();
  }

  private publish(step: number): Promise<number> {
    return publishWeights(this.ask, this.args.paramServer, step, this.specs, this.learner.currentWeights(), {
      chunkBytes: this.args.chunkBytes,
    });
  }
}

function errorReply(err: DrError): LearnerErrorReply {
  return { error: { code: err.code, message: err.message } };
}

/** The all-reduce port of one learner: sends are asks to the peer's inbox actor. */
function actorPort(args: LearnerArgs, ctx: ActorContext): CollectivePort {
  const inbox = inboxOf(learnerName(args.group, args.rank));
  const timeoutMs = args.collectiveTimeoutMs ?? 600_000;
  return {
    rank: args.rank,
    size: args.size,
    send: async (to, key, data) => {
      await ctx.ask(
        inboxName(args.group, to),
        {
          v: LEARNER_PROTOCOL,
          type: 'learner.chunk',
          from: args.rank,
          key,
          data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
        },
        { timeoutMs },
      );
    },
    receive: (from, key) => inbox.take(from, key, timeoutMs),
  };
}

export const learnerActor: ActorFactory<LearnerArgs> = async (args, ctx) => {
  const engine = await loadLearnerEngine(args.model, args.device, {
    residency: args.residency,
    optimizer: args.config.optimizer,
  });
  const ask: AskFn = (target, msg, options) => ctx.ask(target, msg, options);
  inboxOf(learnerName(args.group, args.rank));
  if (args.size > 1) {
    try {
      await ctx.spawn({
        kind: 'learner-inbox',
        name: inboxName(args.group, args.rank),
        args: { learner: learnerName(args.group, args.rank) },
        placement: { kind: 'local' },
      });
    } catch (err) {
      // A restarted learner finds its inbox still running.
      if (!isDrError(err, ActorErrorCode.NAME_TAKEN)) throw err;
    }
  }
  const port = args.size > 1 ? actorPort(args, ctx) : null;
  return new LearnerActor(args, new Learner(engine, args.config, port), engine.params, ask);
};

export const learnerInboxActor: ActorFactory<{ learner: string }> = (args) => ({
  receive(raw: unknown): { ok: true } {
    const msg = chunkMessage.parse(raw);
    const bytes = Uint8Array.from(msg.data);
    inboxOf(args.learner).deliver(msg.from, msg.key, new Float32Array(bytes.buffer, 0, bytes.byteLength / 4));
    return { ok: true };
  },
});
