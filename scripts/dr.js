#!/usr/bin/env node
// The `dr` binary: registers the TypeScript loader, then runs the CLI written in TypeScript.
import { register } from 'tsx/esm/api';

register();
await import('./dr.ts');
