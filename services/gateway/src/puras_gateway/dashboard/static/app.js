// The dashboard's shell: sign-in, navigation, and the route table. Each page is its own
// module under pages/, loaded when first visited, so the jobs page paints without
// fetching the playground's form code.
import { html, render, useEffect, useMemo, useRef, useState } from "./lib/ui.js";
import { createClient } from "./lib/api.js";
import { clearSession, keyLabel, loadSession, saveSession } from "./lib/session.js";
import { currentLocation, match, useLocation, href, navigate } from "./lib/router.js";
import { ClientContext, ErrorBox, Loading, SessionContext } from "./lib/components.js";

/** kind: which sessions see the route ("key": a project API key, "admin": the admin token). */
const ROUTES = [
  { path: "/jobs", kind: "key", nav: "Jobs", load: () => import("./pages/jobs.js") },
  { path: "/jobs/:id", kind: "key", load: () => import("./pages/job.js") },
  { path: "/deployments", kind: "key", nav: "Deployments", load: () => import("./pages/deployments.js") },
  { path: "/playground", kind: "key", nav: "Playground", load: () => import("./pages/playground.js") },
  { path: "/playground/:skill", kind: "key", load: () => import("./pages/playground.js") },
  { path: "/usage", kind: "key", nav: "Usage", load: () => import("./pages/usage.js") },
  { path: "/drive", kind: "key", nav: "Drive", load: () => import("./pages/drive.js") },
  { path: "/keys", kind: "key", nav: "API keys", load: () => import("./pages/keys.js") },
  { path: "/secrets", kind: "key", nav: "Secrets", load: () => import("./pages/secrets.js") },
  { path: "/admin/projects", kind: "admin", nav: "Projects", load: () => import("./pages/admin_projects.js") },
  { path: "/admin/projects/:id", kind: "admin", load: () => import("./pages/admin_project.js") },
];

const HOME = { key: "/jobs", admin: "/admin/projects" };

/** The route a session sees at `path`, with its parameters, or null. */
function routeFor(kind, path) {
  for (const r of ROUTES) {
    const params = match(r.path, path);
    if (params && r.kind === kind) return { route: r, params };
  }
  return null;
}

/**
 * Moves focus to the new page's heading (screen readers announce where they landed,
 * and Tab continues from the top of the page, not from the link just used). A page may
 * show its heading only after its first fetch, so this waits for it to appear; if the
 * user has meanwhile moved into the page (typed in a field), focus stays with them.
 * @returns {() => void} stops waiting
 */
function focusHeading(main) {
  const tryFocus = () => {
    const heading = document.getElementById("page-title");
    if (!heading) return false;
    const active = document.activeElement;
    if (!(active && active !== main && main.contains(active))) heading.focus();
    return true;
  };
  if (!main || tryFocus()) return () => {};
  const seen = new MutationObserver(() => tryFocus() && stop());
  const timer = setTimeout(() => stop(), 5000);
  const stop = () => {
    seen.disconnect();
    clearTimeout(timer);
  };
  seen.observe(main, { childList: true, subtree: true });
  return stop;
}

/** Which kind of credential a token is: a key answers the balance, the admin token the project list. */
async function identify(token) {
  const client = createClient(token);
  try {
    await client.get("/v1/billing/balance");
    return "key";
  } catch (e) {
    if (e.status !== 401 && e.status !== 403) throw e;
  }
  await client.get("/v1/admin/projects");
  return "admin";
}

function SignIn({ onSignedIn }) {
  const [token, setToken] = useState("");
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  const submit = async (ev) => {
    ev.preventDefault();
    const t = token.trim();
    if (!t) return setError(new Error("Paste a project API key or the admin token."));
    setBusy(true);
    setError(null);
    try {
      const kind = await identify(t);
      onSignedIn({ kind, token: t, label: kind === "admin" ? "operator" : keyLabel(t) });
    } catch (e) {
      setError(e.status === 401 ? new Error("That key or token was not accepted.") : e);
    } finally {
      setBusy(false);
    }
  };
  useEffect(() => {
    document.title = "Sign in · Puras";
  }, []);
  return html`<main class="signin" id="main">
    <h1>Puras</h1>
    <form onSubmit=${submit} class="card">
      <label for="token">Project API key or admin token</label>
      <input id="token" name="token" type="password" autocomplete="off" spellcheck=${false}
        placeholder="puras_live_…" value=${token} onInput=${(e) => setToken(e.currentTarget.value)}
        aria-describedby="token-help" required />
      <p id="token-help" class="muted">Kept in this tab's session only: closing the tab signs you out.</p>
      <${ErrorBox} error=${error} />
      <button type="submit" class="primary" disabled=${busy}>${busy ? "Signing in…" : "Sign in"}</button>
    </form>
  </main>`;
}

function Nav({ session, path, onSignOut }) {
  const [open, setOpen] = useState(false);
  const items = ROUTES.filter((r) => r.nav && r.kind === session.kind);
  useEffect(() => setOpen(false), [path]);
  // The skip link moves focus itself: following "#main" would change the hash, which is
  // the router's (and would send the user home).
  const skip = (ev) => {
    ev.preventDefault();
    const main = document.getElementById("main");
    if (main) main.focus();
  };
  return html`<header class="top">
    <a class="skip" href="#main" onClick=${skip}>Skip to content</a>
    <a class="brand" href=${href(HOME[session.kind])}>Puras</a>
    <button type="button" class="menu" aria-expanded=${open} aria-controls="nav" onClick=${() => setOpen(!open)}>Menu</button>
    <nav id="nav" class=${open ? "open" : ""} aria-label="Main">
      ${items.map(
        (r) => html`<a href=${href(r.path)} aria-current=${path === r.path || path.startsWith(r.path + "/") ? "page" : undefined}>${r.nav}</a>`,
      )}
    </nav>
    <div class="who">
      <span class="muted" title="signed in as">${session.label}</span>
      <button type="button" onClick=${onSignOut}>Sign out</button>
    </div>
  </header>`;
}

/** focusFirst: move focus to the first page shown too (after signing in; not on a reload,
 * where the browser's own start, the skip link, is where keyboard users expect to be). */
function Outlet({ session, loc, focusFirst }) {
  const found = useMemo(() => routeFor(session.kind, loc.path), [loc.path, session.kind]);
  const [mod, setMod] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    if (!found) return;
    let live = true;
    setError(null);
    found.route.load().then(
      (m) => live && setMod({ route: found.route, Page: m.default }),
      (e) => live && setError(new Error(`This page failed to load: ${e.message}`)),
    );
    return () => {
      live = false;
    };
  }, [found && found.route]);
  useEffect(() => {
    if (!found) navigate(HOME[session.kind], null, { replace: true });
  }, [found, session.kind]);
  const shown = !error && found && mod && mod.route === found.route;
  const firstShow = useRef(true);
  useEffect(() => {
    if (!shown) return;
    const first = firstShow.current;
    firstShow.current = false;
    if (!first || focusFirst) return focusHeading(document.getElementById("main"));
  }, [shown, loc.path]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!found || !mod || mod.route !== found.route) return html`<${Loading} />`;
  const Page = mod.Page;
  return html`<${Page} params=${found.params} query=${loc.query} />`;
}

function App() {
  const [session, setSession] = useState(loadSession);
  const [signedInHere, setSignedInHere] = useState(false);
  const loc = useLocation();
  const client = useMemo(() => (session ? createClient(session.token) : null), [session]);
  const signOut = () => {
    clearSession();
    setSession(null);
    navigate("/", null, { replace: true });
  };
  if (!session) {
    return html`<${SignIn} onSignedIn=${(s) => {
      saveSession(s);
      setSignedInHere(true);
      setSession(s);
      // A link opened before signing in (#/jobs/job_123) is where the user wanted to go.
      if (!routeFor(s.kind, currentLocation().path)) navigate(HOME[s.kind], null, { replace: true });
    }} />`;
  }
  return html`<${SessionContext.Provider} value=${{ session, signOut }}>
    <${ClientContext.Provider} value=${client}>
      <${Nav} session=${session} path=${loc.path} onSignOut=${signOut} />
      <main id="main" class="page" tabindex="-1">
        <${Outlet} session=${session} loc=${loc} focusFirst=${signedInHere} />
      </main>
    <//>
  <//>`;
}

const root = document.getElementById("app");
root.textContent = ""; // the static "Loading" line, not Preact's to diff
render(html`<${App} />`, root);
