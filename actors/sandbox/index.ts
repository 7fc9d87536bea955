/**
 * Public surface of the sandbox web, for in-process use by other actors, scripts and tests.
 * See README.md in this folder for what the world, pages, endpoints and questions look like.
 */
export {
  generateWorld,
  type World,
  type Entity,
  type EntityType,
  type Placement,
  type WorldOptions,
} from './world.ts';
export { buildSite, type Site, type SitePage, type PageBehaviour } from './site.ts';
export { SearchIndex, type SearchHit, type SearchPage } from './search-index.ts';
export {
  SANDBOX_DEFAULT_API_KEY,
  startSandboxServer,
  type SandboxServer,
  type SandboxServerOptions,
  type SandboxStats,
} from './server.ts';
export {
  parseInjection,
  parseLatencySpec,
  sampleLatency,
  type InjectionConfig,
  type InjectionRule,
  type LatencySpec,
} from './injection.ts';
export {
  generateQuestions,
  questions,
  toRow,
  questionsParquet,
  writeQuestionsParquet,
  ANSWER_SPLIT,
  SPLITS,
  type SandboxQuestion,
  type QuestionRow,
  type Split,
  type Hop,
} from './questions.ts';
export { sandboxActor } from './sandbox-actor.ts';
