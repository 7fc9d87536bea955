/**
 * What a reader is: given a document split into pages, the question, the sub-question and what the
 * trajectory already knows, it returns the new relevant information as short units and how many pages it
 * looked at. Two readers implement it: an LLM that pages through (llm-reader.ts) and an extractive BM25
 * ranker for when no reading model is configured (extractive-reader.ts).
 */
export interface ReadInput {
  question: string;
  subQuestion?: string;
  url: string;
  title: string;
  pages: string[];
  /** Notes already returned to the trajectory. */
  known: string[];
  /** True when a unit was not returned to the trajectory before. */
  isNew(unit: string): boolean;
}

export interface ReadOutput {
  /** New relevant information, one fact or passage per unit. */
  units: string[];
  pagesRead: number;
}

export interface PageReader {
  read(input: ReadInput): Promise<ReadOutput>;
}
