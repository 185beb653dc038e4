// Planning objects for people, in a real browser against a running
// `patchwell demo`:
//
//   node planning.test.mjs CONSOLE_URL USER PASSWORD ARTIFACT_DIR
//
// An exemption made through its form, its host named by name; an unknown
// host refused on the form with what was typed kept; the exemption edited
// by name and deleted after a confirmation. A baseline and a policy from
// their forms. A new user's role starts at the least privilege. No page
// is wider than the window, and a host's findings come a page at a time.
import { session } from "./session.mjs";

const s = await session("planning", process.argv.slice(2));
await s.run(async ({ page, origin, shot, expect, heading, fits, dialogs }) => {
  const fieldsForm = () => page.locator('form:has(input[name="form"][value="fields"])');
  const inAMonth = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);

  await page.goto(`${origin}/console/plans/exemptions`);
  expect((await heading()) === "Exemptions", "the exemptions page");
  let form = fieldsForm();
  await form.getByLabel("Name", { exact: true }).fill("browser-kiosk");
  await form.getByLabel("Hosts, by name or id (separated by commas or spaces)").fill("sim-ws-0001");
  await form.getByLabel("Or every update of a package, instead of an advisory").fill("openssl");
  await form.getByLabel("Reason", { exact: true }).fill("Browser test: kiosk image frozen.");
  await form.getByLabel("Compensating control").fill("isolated VLAN 40");
  await form.getByLabel("Expires (at the end of this day, UTC)").fill(inAMonth);
  await shot("exemption-form");
  await form.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/done=/);
  expect((await page.getByRole("status").textContent()).includes("browser-kiosk saved."), "the exemption saved");
  const row = page.locator("tr", { hasText: "browser-kiosk" });
  expect((await row.textContent()).includes("sim-ws-0001"), `the row names the host, got "${await row.textContent()}"`);
  await fits("the exemptions page");
  await shot("exemption-saved");

  // An unknown host: refused on the form, the values kept.
  form = fieldsForm();
  await form.getByLabel("Name", { exact: true }).fill("browser-nobody");
  await form.getByLabel("Hosts, by name or id (separated by commas or spaces)").fill("no-such-host");
  await form.getByLabel("Or every update of a package, instead of an advisory").fill("openssl");
  await form.getByLabel("Reason", { exact: true }).fill("Browser test: nobody.");
  await form.getByLabel("Expires (at the end of this day, UTC)").fill(inAMonth);
  await form.getByRole("button", { name: "Save" }).click();
  expect((await heading()) === "Exemptions", "the exemptions page again");
  expect(await page.getByRole("navigation", { name: "Main" }).isVisible(), "the navigation");
  form = fieldsForm();
  const alert = await form.getByRole("alert").textContent();
  expect(alert.includes('no host "no-such-host"'), `the message names the host, got "${alert}"`);
  expect(
    (await form.getByLabel("Hosts, by name or id (separated by commas or spaces)").inputValue()) === "no-such-host",
    "the host as typed",
  );
  expect((await form.getByLabel("Reason", { exact: true }).inputValue()) === "Browser test: nobody.", "the reason as typed");
  await shot("exemption-refused");

  // Edited by name; deleted after a confirmation.
  await page.goto(`${origin}/console/plans/exemptions`);
  await page.locator("tr", { hasText: "browser-kiosk" }).getByRole("link", { name: "Edit" }).click();
  form = fieldsForm();
  expect(
    (await form.getByLabel("Hosts, by name or id (separated by commas or spaces)").inputValue()) === "sim-ws-0001",
    "the exemption's host shown by name",
  );
  expect((await form.getByLabel("Expires (at the end of this day, UTC)").inputValue()) === inAMonth, "its day");
  await page.getByRole("button", { name: "Delete browser-kiosk" }).click();
  await page.waitForURL(/done=/);
  expect(dialogs.some((d) => d.startsWith("Delete browser-kiosk?")), "the delete asked first");
  expect((await page.getByRole("status").textContent()).includes("browser-kiosk deleted."), "deleted");

  // A baseline and a policy from their forms.
  await page.goto(`${origin}/console/plans/baselines`);
  form = fieldsForm();
  await form.getByLabel("Name", { exact: true }).fill("browser-servers");
  await form.getByLabel("Group of its hosts").fill("servers");
  await form.getByLabel('Minimum versions (one "package version" a line)').fill("openssl 3.0.0");
  await form.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/done=/);
  expect((await page.getByRole("status").textContent()).includes("browser-servers saved."), "the baseline saved");
  await page.goto(`${origin}/console/plans/policies`);
  form = fieldsForm();
  await form.getByLabel("Name", { exact: true }).fill("browser-laptops");
  await form.getByLabel("Hosts (a query)").fill("tag = laptop");
  await form.getByLabel("Security updates only").check();
  await form.getByLabel(/^Maintenance windows/).fill("every sat at 01:00 for 4 hours");
  await form.getByRole("button", { name: "Save" }).click();
  await page.waitForURL(/done=/);
  expect((await page.getByRole("status").textContent()).includes("browser-laptops saved."), "the policy saved");
  await shot("policy-saved");

  // A new user starts at the least privilege.
  await page.goto(`${origin}/console/users`);
  expect((await page.locator("#role").inputValue()) === "auditor", "a new user's role defaults to auditor");

  // Long text wraps; a host's findings come a page at a time.
  for (const path of ["/console/procedure", "/console/plans/exemptions", "/console/users", "/console/reports"]) {
    await page.goto(`${origin}${path}`);
    await fits(path);
  }
  await page.goto(`${origin}/console/hosts`);
  await page.locator("tbody tr a").first().click();
  const findings = page.locator('section[aria-labelledby="findings"]');
  expect((await findings.locator("tbody tr").count()) <= 50, "at most a page of findings");
  await fits("a host's page");
  await shot("host");
});
