import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, api, get, onSessionLost, setCsrfToken, type Session } from "./api";
import { ErrorNotice, Field } from "./ui";
import { Overview } from "./pages/overview";
import { Agents, AgentDetail } from "./pages/agents";
import { Policies, PolicyDetail } from "./pages/policies";
import { Credentials } from "./pages/credentials";
import { Audit } from "./pages/audit";
import { Approvals } from "./pages/approvals";
import { Tools } from "./pages/tools";
import { Operators } from "./pages/operators";
import "uplot/dist/uPlot.min.css";
import "./style.css";

/** The hash route: `#/agents/ag_1?x=y` → ["agents", "ag_1"] and its query. */
function readRoute(): { parts: string[]; params: URLSearchParams } {
  const [path = "", search = ""] = location.hash.replace(/^#\/?/, "").split("?");
  return { parts: path.split("/").filter(Boolean).map(decodeURIComponent), params: new URLSearchParams(search) };
}

function useRoute() {
  const [route, setRoute] = useState(readRoute);
  useEffect(() => {
    const onChange = () => {
      setRoute(readRoute());
      document.getElementById("main")?.focus();
    };
    addEventListener("hashchange", onChange);
    return () => removeEventListener("hashchange", onChange);
  }, []);
  return route;
}

const NAV: [string, string][] = [
  ["overview", "Overview"],
  ["agents", "Agents"],
  ["policies", "Policies"],
  ["credentials", "Credentials"],
  ["audit", "Audit"],
  ["approvals", "Approvals"],
  ["tools", "Tools"],
  ["operators", "Operators"],
];

function SignIn({ notice, onSignedIn }: { notice: string | undefined; onSignedIn: (s: Session) => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  return (
    <main class="signin">
      <form
        aria-labelledby="signin-title"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            const session = await api<Session>("POST", "/api/console/session", { body: { key } });
            setKey("");
            onSignedIn(session);
          } catch (err) {
            setError(err);
          } finally {
            setBusy(false);
          }
        }}
      >
        <h1 id="signin-title">4Runr Gateway console</h1>
        {notice ? (
          <p class="notice" role="status">
            {notice}
          </p>
        ) : null}
        <Field
          label="Operator key"
          id="operator-key"
          hint="The admin key printed at first start, or a key from Operators. It is exchanged for a session and not kept by the page."
        >
          <input id="operator-key" name="operator-key" type="password" autocomplete="off" required value={key} onInput={(e) => setKey(e.currentTarget.value)} />
        </Field>
        <ErrorNotice error={error} />
        <button type="submit" class="primary" disabled={busy}>
          {busy ? "Signing in…" : "Sign in"}
        </button>
      </form>
    </main>
  );
}

function Page({ session, parts, params }: { session: Session; parts: string[]; params: URLSearchParams }) {
  const [page = "overview", id] = parts;
  switch (page) {
    case "agents":
      return id ? <AgentDetail session={session} id={id} /> : <Agents session={session} />;
    case "policies":
      return id ? <PolicyDetail session={session} id={id} /> : <Policies session={session} />;
    case "credentials":
      return <Credentials session={session} />;
    case "audit":
      return <Audit params={params} />;
    case "approvals":
      return <Approvals session={session} />;
    case "tools":
      return <Tools session={session} />;
    case "operators":
      return <Operators session={session} />;
    default:
      return <Overview />;
  }
}

function App() {
  const [session, setSession] = useState<Session | null | undefined>(undefined);
  const [notice, setNotice] = useState<string>();
  const [menuOpen, setMenuOpen] = useState(false);
  const { parts, params } = useRoute();

  const signedIn = (s: Session | null) => {
    setCsrfToken(s?.csrfToken ?? null);
    setSession(s);
  };
  useEffect(() => {
    onSessionLost((reason) => {
      setNotice(reason);
      signedIn(null);
    });
    // After a reload the HttpOnly cookie may still hold a session: ask the server who we are.
    get<Session | { operator: null; reason?: string }>("/api/console/session").then(
      (answer) => {
        if (answer.operator !== null) {
          signedIn(answer);
          return;
        }
        if ("reason" in answer && answer.reason === "session_expired") setNotice("Your session expired: sign in again.");
        signedIn(null);
      },
      (err: unknown) => {
        setNotice(err instanceof ApiError ? `${err.body.message} (${err.body.code})` : "The gateway cannot be reached.");
        signedIn(null);
      },
    );
  }, []);
  useEffect(() => setMenuOpen(false), [parts.join("/")]);

  if (session === undefined) return <p class="loading">Loading…</p>;
  if (session === null)
    return (
      <SignIn
        notice={notice}
        onSignedIn={(s) => {
          setNotice(undefined);
          signedIn(s);
        }}
      />
    );
  const current = parts[0] ?? "overview";
  return (
    <div class="shell">
      <a class="skip" href="#main" onClick={(e) => (e.preventDefault(), document.getElementById("main")?.focus())}>
        Skip to content
      </a>
      <header class="topbar">
        <button type="button" class="menu" aria-expanded={menuOpen} aria-controls="nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </button>
        <span class="brand">4Runr Gateway</span>
        <span class="who" data-testid="who">
          {session.operator.name} <span class={`badge b-${session.operator.role}`}>{session.operator.role}</span>
        </span>
        <button
          type="button"
          onClick={async () => {
            try {
              await api("DELETE", "/api/console/session");
            } finally {
              setNotice("Signed out.");
              signedIn(null);
            }
          }}
        >
          Sign out
        </button>
      </header>
      <nav id="nav" class={menuOpen ? "open" : ""} aria-label="console">
        <ul>
          {NAV.map(([slug, label]) => (
            <li key={slug}>
              <a href={`#/${slug}`} aria-current={current === slug ? "page" : undefined}>
                {label}
              </a>
            </li>
          ))}
        </ul>
      </nav>
      <main id="main" tabIndex={-1}>
        <Page session={session} parts={parts} params={params} />
      </main>
    </div>
  );
}

render(<App />, document.getElementById("app")!);
