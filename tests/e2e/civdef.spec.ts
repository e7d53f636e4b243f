/**
 * M31 between three browsers through the relay (Debian Chromium, one `chromium.launch` per peer,
 * notifications granted): A (Wehrleiter Issum, cert from a root key held by the test) publishes a
 * `warning` for Issum in the Alerts view; B (resident in Issum) lists it and gets an OS notification
 * through the service worker; C (resident in Wesel) lists it but gets no notification. B acknowledges
 * in the view and A sees the ack; A cancels and B's notification is replaced; a notificationclick on it
 * (dispatched inside B's service worker) brings B's window to `#m/civdef/<alert_id>`. B reloads (late view):
 * everything is still there; A's audit exports and verifies in the view. The issuing root (key held by the
 * test) revokes A's cert: A's next alert is refused with `civdef_role_revoked`, B and C get nothing new and no
 * notification, and the revocation still holds after B's reload.
 */
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRelay } from '../../relay/server.js';
import { keyPairFromSeed, signObject } from '../../engine/identity/identity.js';
import { issueCert, iso, signRevocation } from '../../engine/civdef/role.js';
import { PEER_ARGS } from './peer-browser.js';

const ROOT_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ARGS = PEER_ARGS;
const P = 'experimental.civdef.';
const ISSUM = 'DE.NRW.Kleve.Issum';
const ROOT = keyPairFromSeed(new Uint8Array(32).fill(231));

async function ready(page: Page): Promise<void> {
  await page.waitForFunction(() => window.hearthnetReady === true || !!window.hearthnetBootError, null, {
    timeout: 30_000,
  });
  expect(await page.evaluate(() => window.hearthnetBootError ?? null)).toBeNull();
}
async function linked(a: Page, b: Page) {
  const bid = await b.evaluate(() => window.hearthnet!.id);
  await expect
    .poll(
      () => a.evaluate((o) => window.hearthnet!.peers().some((x) => x.id === o && x.state === 'open'), bid),
      { timeout: 45_000 },
    )
    .toBe(true);
}
/** join A's community with civdef on (root trusted, home region set), reload, open the Alerts view */
async function setup(page: Page, community: string | null, home: string) {
  await page.evaluate(
    ([c, root, h]) =>
      window.hearthnet!.setConfig({
        ...(c ? { community: { community_id: c } } : {}),
        civdef: { enabled: true, trust_roots_extra: [root], home_region: h, allow_public_ack: true },
      } as never),
    [community, ROOT.nodeId, home] as const,
  );
  await page.reload();
  await ready(page);
  await page.getByTestId('nav-module-civdef').click();
  await page.getByTestId('civdef-audit-export').waitFor({ timeout: 30_000 });
}
const notes = (page: Page, tag: string) =>
  page.evaluate(async (t) => {
    const reg = await navigator.serviceWorker.getRegistration();
    return (await reg!.getNotifications({ tag: t })).map((n) => n.title);
  }, tag);
const row = (page: Page, id: string) => page.locator(`[data-testid="civdef-alert"][data-alert-id="${id}"]`);

test('authority publishes for Issum: resident there notified, resident elsewhere not; ack, click, cancel, reload, audit', async () => {
  test.setTimeout(180_000);
  const relay = await createRelay({
    host: '127.0.0.1',
    port: 0,
    staticDir: path.join(ROOT_DIR, 'app/dist'),
    log: () => {},
  });
  const browsers: Browser[] = [];
  try {
    const launch = async () => {
      const b = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: ARGS });
      browsers.push(b);
      const ctx = await b.newContext();
      await ctx.grantPermissions(['notifications'], { origin: relay.url });
      const page = await ctx.newPage();
      page.on('dialog', (d) => void d.accept('Pegel sinkt, Entwarnung'));
      await page.goto(relay.url);
      await ready(page);
      return page;
    };
    const [pa, pb, pc] = [await launch(), await launch(), await launch()];
    const community = await pa.evaluate(() => window.hearthnet!.communityId);
    await setup(pa, null, ISSUM);
    await setup(pb, community, ISSUM);
    await setup(pc, community, 'DE.NRW.Wesel.Moers');
    await linked(pa, pb);
    await linked(pa, pc);
    // the service worker controls B (notifications go through it)
    await pb.waitForFunction(() => !!navigator.serviceWorker.controller, null, { timeout: 30_000 });

    // A registers its Wehrleiter cert (issued by the trusted root) and publishes in the view
    const idA = await pa.evaluate(() => window.hearthnet!.id);
    const now = Date.now();
    const cert = issueCert((o) => signObject(ROOT, o), {
      holder: idA as never,
      role: `${ISSUM}.Feuerwehr.Wehrleiter`,
      region: ISSUM,
      issuer: ROOT.nodeId,
      issuer_chain: [ROOT.nodeId],
      issued_at: iso(now - 3600_000),
      expires_at: iso(now + 30 * 86400_000),
      scopes: ['alert.publish', 'alert.cancel', 'alert.ack'],
    });
    await pa.evaluate(
      ([cap, c]) => window.hearthnet!.call(cap as string, { cert: c }),
      [`${P}role.register`, cert],
    );
    await pa.getByTestId('civdef-draft-open').click();
    await expect(pa.getByTestId('civdef-cert').locator('option')).toHaveCount(1);
    await pa.getByTestId('civdef-cert').selectOption(cert.cert_id);
    await pa.getByTestId('civdef-severity').selectOption('warning');
    await pa.getByTestId('civdef-title').fill('Hochwasser an der Niers');
    await pa.getByTestId('civdef-body').fill('Uferwege meiden. Keller räumen.');
    await pa.getByTestId('civdef-region').fill(ISSUM);
    const t0 = Date.now();
    await pa.getByTestId('civdef-publish').click();
    await expect(pa.getByTestId('civdef-message')).toContainText('veröffentlicht');
    const id = (await pa.getByTestId('civdef-message').textContent())!.match(/[0-9A-HJKMNP-TV-Z]{26}/)![0];

    // B (Issum): in the list and as a notification; C (Wesel): in the list, never notified
    await expect(row(pb, id)).toBeVisible({ timeout: 30_000 });
    await expect.poll(() => notes(pb, id), { timeout: 30_000 }).toEqual(['Hochwasser an der Niers']);
    // the issue's 2 s goal is measured by `npm run bench -- m31`, not asserted on a loaded machine
    console.log(`civdef e2e: publish → B notified in ${Date.now() - t0} ms`);
    await expect(row(pc, id)).toBeVisible({ timeout: 30_000 });
    expect(await notes(pc, id)).toEqual([]);

    // B acknowledges in the view; A sees the ack
    await row(pb, id).getByTestId('civdef-ack-received').click();
    await expect(pb.getByTestId('civdef-message')).toContainText('gesendet');
    await expect(row(pa, id).getByTestId('civdef-acks')).toContainText('Erhalten 1', { timeout: 30_000 });

    // A cancels: B's notification is replaced (same tag), the alert reads cancelled everywhere
    await row(pa, id).getByTestId('civdef-cancel').click();
    await expect.poll(() => notes(pb, id), { timeout: 30_000 }).toEqual(['Entwarnung']);
    await expect(row(pb, id)).toHaveAttribute('data-state', 'cancelled', { timeout: 30_000 });
    await expect(row(pc, id)).toHaveAttribute('data-state', 'cancelled', { timeout: 30_000 });
    expect(await notes(pc, id)).toEqual([]);

    // a click on B's (replaced) notification, dispatched inside B's service worker, opens the app at the alert
    await pb.evaluate(() => (location.hash = '#'));
    await expect(pb.getByTestId('view-home')).toBeVisible();
    const sw = pb.context().serviceWorkers()[0] ?? (await pb.context().waitForEvent('serviceworker'));
    await sw.evaluate(async (tag) => {
      // (service-worker globals, typed loosely: the test's tsconfig has the DOM library only)
      const g = self as any;
      const [n] = await g.registration.getNotifications({ tag });
      g.dispatchEvent(new g.NotificationEvent('notificationclick', { notification: n }));
    }, id);
    await expect.poll(() => pb.evaluate(() => location.hash), { timeout: 15_000 }).toBe(`#m/civdef/${id}`);
    await expect(row(pb, id)).toHaveAttribute('data-focused', 'true', { timeout: 30_000 });

    await expect(row(pb, id)).toHaveAttribute('data-state', 'cancelled');
    expect(await notes(pb, id)).toEqual([]); // the click closed it

    // the issuing root (its key held by the test, as for the cert) revokes A's cert; the signed revocation
    // enters the mesh as the module's gossip event (`civdef.role.revoked`) at B and C, and reaches A from them
    const revocation = signRevocation((o) => signObject(ROOT, o), {
      cert_id: cert.cert_id,
      revoked_by: ROOT.nodeId,
      revoked_at: iso(Date.now()),
      reason: 'Schlüssel verloren',
    });
    for (const p of [pb, pc])
      await p.evaluate(
        ([r, c]) => window.hearthnet!.events.append('civdef.role.revoked', { revocation: r, cert: c }),
        [revocation, cert] as const,
      );
    const state = (p: Page) =>
      p.evaluate(
        async ([cap, cid]) =>
          (await window.hearthnet!.call(cap as string, { include_inactive: true })).certs.find(
            (c: { cert: { cert_id: string } }) => c.cert.cert_id === cid,
          )?.state ?? null,
        [`${P}role.list`, cert.cert_id],
      );
    for (const p of [pa, pb, pc]) await expect.poll(() => state(p), { timeout: 30_000 }).toBe('revoked');
    // A's next alert: its own node refuses it with the seed's code; B and C get no alert and no notification
    const listed = (p: Page) =>
      p.evaluate(
        async (cap) => (await window.hearthnet!.call(cap, { active_only: false })).alerts.length,
        `${P}alert.list`,
      );
    const listedBefore = [await listed(pb), await listed(pc)];
    const refused = await pa.evaluate(
      ([cap, cid]) =>
        window
          .hearthnet!.call(cap as string, {
            cert_id: cid,
            severity: 'warning',
            title: 'Nach dem Widerruf',
            body: 'darf nirgends ankommen',
            target: { region: 'DE.NRW.Kleve.Issum', bbox: null, roles: [], channels: ['local', 'push'] },
          })
          .then(
            () => 'published',
            (e: { code?: string }) => e.code ?? String(e),
          ),
      [`${P}alert.publish`, cert.cert_id],
    );
    expect(refused).toBe('civdef_role_revoked');
    const allNotes = (p: Page) =>
      p.evaluate(
        async () => (await (await navigator.serviceWorker.getRegistration())!.getNotifications()).length,
      );
    await pb.waitForTimeout(2_000);
    for (const [i, p] of [pb, pc].entries()) {
      expect(await listed(p)).toBe(listedBefore[i]);
      expect(listedBefore[i]).toBe(1);
      expect(await allNotes(p)).toBe(0);
    }
    await expect(row(pb, id)).toContainText('Zertifikat widerrufen', { timeout: 30_000 });

    // B reloads (late view): alert, cancel and its own ack are still there
    await pb.reload();
    await ready(pb);
    await expect(row(pb, id)).toHaveAttribute('data-state', 'cancelled', { timeout: 30_000 });
    const acks = await pb.evaluate(
      ([cap, a]) => window.hearthnet!.call(cap as string, { alert_id: a }),
      [`${P}alert.acks`, id],
    );
    expect(acks.acks.map((k: { status: string }) => k.status)).toEqual(['received']);
    // the revocation still holds after the reload
    expect(await state(pb)).toBe('revoked');
    await expect(row(pb, id)).toContainText('Zertifikat widerrufen');

    // A's audit (publish, ack received, cancel) exports and verifies in the view
    await pa.getByTestId('civdef-audit-export').click();
    await expect(pa.getByTestId('civdef-audit-report')).toHaveAttribute('data-ok', 'true');
  } finally {
    for (const b of browsers) await b.close();
    await relay.close();
  }
});
