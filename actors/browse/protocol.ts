/**
 * Messages a BrowseActor accepts and the replies it sends (protocol version 1). Plain, msgpack-encodable
 * data; the actor validates every message with the schemas below and answers a bad one with a reply whose
 * `error.code` is `BROWSE_BAD_REQUEST` (a reply, not a thrown error: a bad tool call must not restart the
 * actor and wipe the memories of every trajectory it serves).
 *
 * Routing: each trajectory's short-term memory lives in one BrowseActor, so every browse of a trajectory must
 * go to the same actor: `browse/<browseShardFor(trajectoryId, n)>` (browse-routing.ts).
 */
import { z } from 'zod';

export const BROWSE_PROTOCOL_VERSION = 1;
/** URLs one browse_webpage call may carry; they are read concurrently. */
export const MAX_URLS_PER_CALL = 5;
export const MAX_URL_CHARS = 4_096;

/**
 * ok: the page was read (`information` may be empty when it had nothing new and relevant);
 * unsupported: a content type the browser does not read (images, archives, ...);
 * refused: the URL is not allowed (scheme, private address, ...);
 * failed: the fetch or the reading failed (timeout, HTTP error, too many redirects, broken page, ...).
 */
export type BrowseStatus = 'ok' | 'unsupported' | 'refused' | 'failed';

/** The `browse_webpage` tool call (served concurrently with other calls: the actor takes up to
 * `maxConcurrency` asks at once). */
export interface BrowseRequest {
  v: 1;
  type: 'browse_webpage';
  urls: string[];
  /** The research question of the trajectory. */
  question: string;
  /** The search query that found these pages, when known. */
  subQuestion?: string;
  /** Keys the short-term memory: a repeated browse in one trajectory returns only what is new. */
  trajectoryId: string;
}

export interface PageOutcome {
  url: string;
  status: BrowseStatus;
  /** New, relevant information extracted from the page (never raw page text beyond short quotes). */
  information: string;
  /** Page title when known. */
  title?: string;
  pagesRead: number;
  totalPages: number;
  /** Set when status is not 'ok': a DrError code and message (e.g. BROWSE_BLOCKED_ADDRESS). */
  error?: { code: string; message: string };
}

export interface BrowseReply {
  v: 1;
  type: 'browse_webpage.reply';
  /** Same order and length as the request's `urls`; empty when the whole request was refused. */
  results: PageOutcome[];
  /** Set when the whole request was refused (BROWSE_BAD_REQUEST); per-URL failures are in `results`. */
  error?: { code: string; message: string };
}

/** Drop a finished trajectory's memory (optional: memory is bounded and evicts old trajectories anyway). */
export interface ForgetTrajectory {
  v: 1;
  type: 'browse.forget';
  trajectoryId: string;
}

export interface ForgetTrajectoryReply {
  v: 1;
  type: 'browse.forget.reply';
  forgotten: boolean;
}

export interface BrowseStatsRequest {
  v: 1;
  type: 'browse.stats';
}

export interface BrowseStats {
  fetches: number;
  pageCacheHits: number;
  refused: number;
  failed: number;
  readerCalls: number;
  trajectories: number;
}

export interface BrowseStatsReply extends BrowseStats {
  v: 1;
  type: 'browse.stats.reply';
}

export type BrowseMessage = BrowseRequest | ForgetTrajectory | BrowseStatsRequest;
export type BrowseActorReply = BrowseReply | ForgetTrajectoryReply | BrowseStatsReply;

export const browseRequestSchema = z.object({
  v: z.literal(BROWSE_PROTOCOL_VERSION),
  type: z.literal('browse_webpage'),
  urls: z
    .array(z.string().trim().min(1, 'a URL must not be empty').max(MAX_URL_CHARS))
    .min(1, 'browse_webpage needs at least one URL')
    .max(MAX_URLS_PER_CALL, `browse_webpage takes at most ${MAX_URLS_PER_CALL} URLs per call`),
  question: z.string().trim().min(1, 'browse_webpage needs the question').max(8_000),
  subQuestion: z.string().max(2_000).optional(),
  trajectoryId: z.string().min(1, 'browse_webpage needs a trajectoryId').max(256),
});

export const forgetTrajectorySchema = z.object({
  v: z.literal(BROWSE_PROTOCOL_VERSION),
  type: z.literal('browse.forget'),
  trajectoryId: z.string().min(1).max(256),
});

export const browseStatsRequestSchema = z.object({
  v: z.literal(BROWSE_PROTOCOL_VERSION),
  type: z.literal('browse.stats'),
});

export const browseMessageSchema = z.discriminatedUnion('type', [
  browseRequestSchema,
  forgetTrajectorySchema,
  browseStatsRequestSchema,
]);

export function browseRequest(
  urls: string[],
  question: string,
  trajectoryId: string,
  subQuestion?: string,
): BrowseRequest {
  return {
    v: BROWSE_PROTOCOL_VERSION,
    type: 'browse_webpage',
    urls,
    question,
    trajectoryId,
    ...(subQuestion === undefined ? {} : { subQuestion }),
  };
}
