/** Loader hook of the mutant runner: applies the active mutant's source patches to engine/ files as they load. */
let patches = [];
export function initialize(data) {
  patches = data?.patches ?? [];
}
export async function load(url, context, nextLoad) {
  const r = await nextLoad(url, context);
  const mine = patches.filter((p) => url.endsWith(p.file));
  if (!mine.length || r.source == null) return r;
  let src = typeof r.source === 'string' ? r.source : new globalThis.TextDecoder().decode(r.source);
  for (const p of mine) {
    if (!src.includes(p.find))
      throw new Error(`mutant patch not applicable: ${p.file}: ${p.find.slice(0, 60)}`);
    src = src.split(p.find).join(p.replace);
  }
  return { ...r, source: src };
}
