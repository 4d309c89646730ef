// Event-name globs (picomatch), on the full name `api/event`. (Line comments:
// a glob such as */speed would end a block comment.)
//
//   *     any run of characters except '/': hello/* = every event of hello, one
//         level; */speed also takes /speed (an empty api), as fnmatch would
//   **    any number of levels, as a whole level: ** = every name, hello/** =
//         every name below hello (not hello itself), **/speed = speed at any depth
//   ?     one character except '/';  [abc], {speed,rpm}, extglobs as picomatch has them
//   \     makes the next character literal
//   !     leading: an exclusion; the route takes a name that matches one of its
//         other globs (all names when there is none) and none of its exclusions
//
// Options, and why: dot (names and levels starting with '.' match like any
// other: they are event names, not hidden files; picomatch still never
// matches a level that is exactly '.' or '..' with a wildcard), strictSlashes
// (hello/* does not match 'hello/a/'), strictBrackets (an unclosed bracket
// is an error, not a literal), windows off (a backslash escapes, it is never a
// separator), regexp flag 's' (a wildcard also matches a newline: binder
// names are untrusted bytes, a control character must not hide an event),
// nonegate (exclusions are ours, above).
import picomatch from 'picomatch';

export const GLOB_OPTIONS: picomatch.PicomatchOptions = {
  dot: true, strictSlashes: true, strictBrackets: true, windows: false, flags: 's', nonegate: true,
};

/** Compiles a route's `match` list; throws an Error naming the bad glob. */
export function compileMatch(patterns: readonly string[]): (name: string) => boolean {
  if (patterns.length === 0) throw new Error('match: no glob');
  const literals = new Set<string>();
  const globs: RegExp[] = [];
  const exclusions: RegExp[] = [];
  for (const p of patterns) {
    const exclude = p.startsWith('!');
    const glob = exclude ? p.slice(1) : p;
    let re: RegExp;
    try {
      re = picomatch.makeRe(glob, GLOB_OPTIONS);
    } catch (err) {
      throw new Error(`match: bad glob "${p}": ${(err as Error).message}`);
    }
    if (exclude) exclusions.push(re);
    // A name without any glob syntax is compared as a string: the common case, and the fastest.
    else if (!glob.includes('\\') && !picomatch.scan(glob, GLOB_OPTIONS).isGlob) literals.add(glob);
    else globs.push(re);
  }
  const any = literals.size === 0 && globs.length === 0;
  const included = (name: string): boolean => {
    if (any || literals.has(name)) return true;
    for (let i = 0; i < globs.length; i++) if (globs[i]!.test(name)) return true;
    return false;
  };
  if (exclusions.length === 0) return included;
  return (name) => {
    if (!included(name)) return false;
    for (let i = 0; i < exclusions.length; i++) if (exclusions[i]!.test(name)) return false;
    return true;
  };
}
