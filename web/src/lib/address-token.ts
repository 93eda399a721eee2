/**
 * A bridge that requires the studio token is opened once as `/?token=…`. Its answer sets an
 * HttpOnly cookie that carries the token from then on (bridge/src/server/policy.ts), so the page
 * takes the token out of the address bar, where history, bookmarks, shared screens and copied
 * links would keep it. Watch links need no token; one given to them anyway goes the same way.
 */

/** `search` without its `token` parameters, other pairs spelled as they were; undefined when it has none. */
export function searchWithoutToken(search: string): string | undefined {
  const pairs = search.replace(/^\?/, '').split('&');
  // The bridge reads the query with URLSearchParams, so `%74oken=` is a token too.
  const kept = pairs.filter((pair) => {
    const key = pair.split('=', 1)[0] ?? '';
    try {
      return decodeURIComponent(key.replace(/\+/g, ' ')) !== 'token';
    } catch {
      return true;
    }
  });
  if (kept.length === pairs.length) return undefined;
  const rest = kept.filter((pair) => pair !== '').join('&');
  return rest === '' ? '' : `?${rest}`;
}

/** Replaces the current history entry with the same URL minus its token; runs before the app reads the URL. */
export function dropTokenFromAddress(): void {
  const search = searchWithoutToken(location.search);
  if (search === undefined) return;
  history.replaceState(history.state, '', `${location.pathname}${search}${location.hash}`);
}
