/* HearthNet service-worker addition, loaded by the Workbox worker through `importScripts` (vite.config.ts).
 * M31 (digest §6): a click on a civil-defence notification opens the app at that alert
 * (`/#m/civdef/<alert_id>`): an open HearthNet window is navigated there and focused; with none open,
 * a new window opens. Other notifications (data.kind other than "civdef") are left to their owners. */
/* global self */
const CIVDEF_ALERT_URL = /^\/#m\/civdef\/[0-9A-HJKMNP-TV-Z]{26}$/;

async function civdefOpenAlert(data) {
  const path = typeof data.url === 'string' && CIVDEF_ALERT_URL.test(data.url) ? data.url : '/#m/civdef';
  const url = new URL(path, self.location.origin).href;
  const wins = await self.clients.matchAll({ type: 'window', includeUncontrolled: true });
  const win = wins.find((c) => new URL(c.url).origin === self.location.origin);
  if (!win) return self.clients.openWindow(url);
  let shown = win;
  if (win.url !== url) {
    try {
      shown = (await win.navigate(url)) || win;
    } catch (e) {
      // an uncontrolled window cannot be navigated by the worker: open a new one at the alert
      console.warn('civdef notificationclick: navigate failed, opening a window', String(e && e.message));
      return self.clients.openWindow(url);
    }
  }
  try {
    await shown.focus();
  } catch (e) {
    // focus needs the user's click (a trusted notificationclick); the window is at the alert anyway
    console.warn('civdef notificationclick: focus refused', String(e && e.message));
  }
  return shown;
}

self.addEventListener('notificationclick', (event) => {
  const data = event.notification.data;
  if (!data || data.kind !== 'civdef') return;
  event.notification.close();
  const done = civdefOpenAlert(data);
  // only a real click extends the worker's life (waitUntil throws on a synthetic, untrusted event)
  if (event.isTrusted) event.waitUntil(done);
});
