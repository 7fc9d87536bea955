/** The trainer's handle on the ParameterServerActor's checkpoint and version requests. */
import {
  PARAMS_PROTOCOL,
  type CheckpointReply,
  type HfExportReply,
  type LatestReply,
  type RestoreReply,
} from './protocol.ts';
import { askParams, type AskFn } from './weight-transfer.ts';

export class ParamsClient {
  constructor(
    private readonly ask: AskFn,
    readonly server: string,
    private readonly timeoutMs = 600_000,
  ) {}

  latest(): Promise<LatestReply> {
    return askParams(this.ask, this.server, { v: PARAMS_PROTOCOL, type: 'params.latest' }, this.timeoutMs);
  }

  async checkpoint(
    step: number,
    optimizer: { step: number; bytes: Uint8Array; sha256: string },
    trainer: unknown,
  ): Promise<string> {
    const r = await askParams<CheckpointReply>(
      this.ask,
      this.server,
      { v: PARAMS_PROTOCOL, type: 'params.checkpoint', step, optimizer, trainer },
      this.timeoutMs,
    );
    return r.path;
  }

  /** The latest version as a Hugging Face folder at `dir` (written on the parameter server's node). */
  export(
    dir: string,
    options: { dtype?: 'F32' | 'BF16' | 'F16'; maxShardBytes?: number } = {},
  ): Promise<HfExportReply> {
    return askParams<HfExportReply>(
      this.ask,
      this.server,
      { v: PARAMS_PROTOCOL, type: 'params.export', dir, ...options },
      this.timeoutMs,
    );
  }

  async restore(checkpoint?: string): Promise<RestoreReply['restored']> {
    const msg = checkpoint === undefined ? {} : { checkpoint };
    const r = await askParams<RestoreReply>(
      this.ask,
      this.server,
      { v: PARAMS_PROTOCOL, type: 'params.restore', ...msg },
      this.timeoutMs,
    );
    return r.restored;
  }
}
