/**
 * A small, strict argument parser: `--name value`, `--name=value`, boolean `--flag`, repeated
 * options collected into arrays, and positionals. Unknown options are errors, so a typo never
 * silently changes a run.
 */
export interface OptionSpec {
  readonly type: 'string' | 'number' | 'boolean';
  readonly repeat?: boolean;
  readonly description: string;
  /** e.g. "N", "F" in help */
  readonly value?: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface Parsed {
  readonly options: ReadonlyMap<string, string | number | boolean | (string | number)[]>;
  readonly positionals: readonly string[];
}

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parseArgs(argv: readonly string[], specs: OptionSpecs): Parsed {
  const options = new Map<string, string | number | boolean | (string | number)[]>();
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = arg.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (spec === undefined) throw new UsageError(`unknown option --${name}`);
    let raw: string | undefined = eq < 0 ? undefined : arg.slice(eq + 1);
    if (spec.type === 'boolean') {
      if (raw !== undefined && raw !== 'true' && raw !== 'false') throw new UsageError(`--${name} takes no value (or =true/=false)`);
      options.set(name, raw !== 'false');
      continue;
    }
    if (raw === undefined) {
      raw = argv[++i];
      if (raw === undefined) throw new UsageError(`--${name} needs a value`);
    }
    let value: string | number = raw;
    if (spec.type === 'number') {
      value = Number(raw);
      if (raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} must be a number, got "${raw}"`);
    }
    if (spec.repeat) {
      const list = (options.get(name) as (string | number)[] | undefined) ?? [];
      list.push(value);
      options.set(name, list);
    } else {
      if (options.has(name)) throw new UsageError(`--${name} given twice`);
      options.set(name, value);
    }
  }
  return { options, positionals };
}

export function optString(p: Parsed, name: string): string | undefined {
  const v = p.options.get(name);
  return typeof v === 'string' ? v : undefined;
}

export function optNumber(p: Parsed, name: string): number | undefined {
  const v = p.options.get(name);
  return typeof v === 'number' ? v : undefined;
}

export function optBool(p: Parsed, name: string): boolean {
  return p.options.get(name) === true;
}

export function optList(p: Parsed, name: string): string[] {
  const v = p.options.get(name);
  return Array.isArray(v) ? v.map(String) : [];
}

export function optInt(p: Parsed, name: string): number | undefined {
  const v = optNumber(p, name);
  if (v !== undefined && !Number.isInteger(v)) throw new UsageError(`--${name} must be an integer, got ${v}`);
  return v;
}

export function helpText(usage: string, specs: OptionSpecs): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  --${name}${s.type === 'boolean' ? '' : ` ${s.value ?? (s.type === 'number' ? 'N' : 'S')}`}`;
    return `${left.padEnd(26)} ${s.description}${s.repeat ? ' (repeatable)' : ''}`;
  });
  return `${usage}\n\nOptions:\n${rows.join('\n')}\n`;
}
