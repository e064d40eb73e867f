"""A launch on one machine: N concurrent volunteers through the real web app, driven by Locust.

Each simulated volunteer opens its own Streamlit session over the app's WebSocket (the protocol the
browser speaks: BackMsg in, ForwardMsg out, the protobufs shipped with Streamlit), arrives as a guest
from its own address (the app trusts ``X-Forwarded-For`` as behind our reverse proxy), or signs in
through the form, and then classifies: the three answers of the GZ2 tree for a smooth round galaxy,
each after a pause of ``--think`` seconds, as a person clicks. Measured per click, the time from the
click to the end of the app's run; **vote→next** is the last click's: the vote written and the next
galaxy on screen. A vote counts as made when the next run says "You have classified N"; at the end the
store must hold every one of them (votes lost = made − stored).

    python bench/launch.py --prepare                 # the workspace: demo survey, accounts, starter model
    python bench/launch.py --users 10 20 40 --store sqlite
    python bench/launch.py --users 10 20 40 --store postgresql
    python bench/launch.py --users 40 --replicas 2   # two web processes behind nginx (sticky by address)
    python bench/launch.py --report

All traffic stays on 127.0.0.1; every run is bounded by --seconds. One JSON line per run goes to
bench/results/launch.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from runlog import append_run, free_port, healthy, stop_groups  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
LOG = ROOT / "bench" / "results" / "launch.jsonl"
WS_ROOT = ROOT / "bench" / "results"  # launch-workspace-<store>/: one per store (their model folders differ)
PATH = [("T01", "t01_smooth"), ("T07", "t07_round"), ("T06", "t06_no")]
CLASSIFIED = re.compile(r"You have classified \*\*(\d+)\*\*")

# --- the Locust side: runs inside `locust -f bench/launch.py` ---------------------------------------------
try:
    from locust import User, between, events, task
except ImportError:  # the driver below does not need Locust itself
    User = object

if User is not object:
    import websocket
    from streamlit.proto.BackMsg_pb2 import BackMsg
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    class Session:
        """One browser tab's Streamlit session over the WebSocket."""

        def __init__(self, host: str, address: str):
            url = host.replace("http://", "ws://").rstrip("/") + "/_stcore/stream"
            self.ws = websocket.create_connection(url, subprotocols=["streamlit"], timeout=60,
                                                  header=[f"X-Forwarded-For: {address}"])
            self.pages: dict[str, str] = {}
            self.page_hash = ""
            self.widgets: dict[str, str] = {}  # key -> widget id
            self.texts: list[str] = []
            self.errors: list[str] = []

        def run(self, page: str | None = None, widgets: list | None = None, timeout: float = 60.0) -> None:
            """One rerun: send the widget states, read until the script finishes."""
            msg = BackMsg()
            cs = msg.rerun_script
            if page is not None:
                cs.page_name = page
                if page in self.pages:
                    cs.page_script_hash = self.pages[page]
            elif self.page_hash:
                cs.page_script_hash = self.page_hash
            for w in widgets or []:
                cs.widget_states.widgets.append(w)
            self.widgets, self.texts, self.errors = {}, [], []
            self.ws.send_binary(msg.SerializeToString())
            end = time.time() + timeout
            while time.time() < end:
                fm = ForwardMsg()
                fm.ParseFromString(self.ws.recv())
                kind = fm.WhichOneof("type")
                if kind == "new_session":
                    for p in fm.new_session.app_pages:
                        self.pages[p.url_pathname or p.page_name] = p.page_script_hash
                    self.page_hash = fm.new_session.page_script_hash
                elif kind == "page_info_changed" or kind == "navigation":
                    if kind == "navigation":
                        for p in fm.navigation.app_pages:
                            self.pages[p.url_pathname or p.page_name] = p.page_script_hash
                        self.page_hash = fm.navigation.page_script_hash
                elif kind == "delta" and fm.delta.WhichOneof("type") == "new_element":
                    el = fm.delta.new_element
                    t = el.WhichOneof("type")
                    if t in ("button", "text_input", "form_submit_button"):
                        w = getattr(el, t)
                        key = w.id.rsplit("-", 1)[-1] if "-" in w.id else w.id
                        self.widgets[key] = w.id
                        if t == "button":
                            self.widgets.setdefault(f"label:{w.label}", w.id)
                    elif t == "markdown":
                        self.texts.append(el.markdown.body)
                    elif t == "alert" and el.alert.format == 1:  # ERROR
                        self.errors.append(el.alert.body)
                    elif t == "exception":
                        self.errors.append(f"{el.exception.type}: {el.exception.message}")
                elif kind == "script_finished":
                    if fm.script_finished == ForwardMsg.FINISHED_EARLY_FOR_RERUN:  # st.rerun(): a new run follows
                        self.widgets, self.texts, self.errors = {}, [], []
                        continue
                    return
            raise TimeoutError("the app did not finish its run")

        def click(self, key: str, extra: list | None = None) -> None:
            from streamlit.proto.WidgetStates_pb2 import WidgetState

            wid = self.widgets.get(key)
            if wid is None:
                raise KeyError(f"no widget {key!r} on the page (errors: {self.errors[:1]})")
            w = WidgetState(id=wid, trigger_value=True)
            self.run(widgets=[w, *(extra or [])])

        def classified(self) -> int | None:
            for t in self.texts:
                m = CLASSIFIED.search(t)
                if m:
                    return int(m.group(1))
            return None

        def close(self) -> None:
            try:
                self.ws.close()
            except Exception:  # noqa: BLE001
                pass

    class Volunteer(User):
        """A volunteer at the keyboard: a guest, or (one in two) an account signing in first."""
        wait_time = between(0.1, 0.2)  # between galaxies; the pauses that matter are per answer (THINK)

        def on_start(self):
            self.address = f"10.{random.randint(0, 255)}.{random.randint(0, 255)}.{random.randint(1, 254)}"
            self.session = Session(self.host, self.address)
            self.made = 0
            self.think = float(os.environ.get("LAUNCH_THINK", "2.0"))
            if ACCOUNTS and random.random() < 0.5:  # each account to one simulated volunteer only
                name, password = ACCOUNTS.pop(random.randrange(len(ACCOUNTS)))
                self._timed("sign in", lambda: self._sign_in(name, password))
            self._timed("open classify", lambda: self.session.run(page="classify"))
            self.before = self.session.classified() or 0  # an account's votes from earlier runs
            if "cls_tutorial_done" in self.session.widgets:
                self.session.click("cls_tutorial_done")

        def _sign_in(self, name: str, password: str) -> None:
            from streamlit.proto.WidgetStates_pb2 import WidgetState

            s = self.session
            s.run(page="signin")
            s.run(widgets=[WidgetState(id=s.widgets["signin_name"], string_value=name),
                           WidgetState(id=s.widgets["signin_password"], string_value=password),
                           WidgetState(id=s.widgets.get("label:Sign in") or next(
                               v for k, v in s.widgets.items() if "FormSubmitter" in v), trigger_value=True)])
            if s.errors:
                raise RuntimeError(s.errors[0])

        def _timed(self, name: str, fn) -> None:
            t0 = time.perf_counter()
            exc = None
            try:
                fn()
                if self.session.errors:
                    exc = RuntimeError(self.session.errors[0][:200])
            except Exception as e:  # noqa: BLE001 - reported to Locust as a failure
                exc = e
                time.sleep(1.0)  # a failing volunteer does not spin
            events.request.fire(request_type="WS", name=name, response_time=(time.perf_counter() - t0) * 1000,
                                response_length=0, exception=exc, context={})
            if exc is not None:
                raise exc

        @task
        def classify_one(self):
            s = self.session
            shown = s.classified()
            for k, (_, answer) in enumerate(PATH):
                time.sleep(random.uniform(0.5, 1.5) * self.think)
                self._timed("vote→next" if k == len(PATH) - 1 else "answer", lambda: s.click(f"ans_{answer}"))
            n = s.classified()
            if shown is not None and n != shown + 1:  # the vote did not show: say what the page said instead
                events.request.fire(request_type="WS", name="vote not shown", response_time=0, response_length=0,
                                    exception=RuntimeError(f"{shown} -> {n}: {(s.errors or s.texts or [''])[0][:120]}"),
                                    context={})
            if n is not None:
                self.made = max(self.made, n - self.before)
                VOTES[str(id(self))] = self.made

        def on_stop(self):
            self.session.close()

    VOTES: dict[str, int] = {}
    ACCOUNTS: list = json.loads(os.environ.get("LAUNCH_ACCOUNTS", "[]"))  # shared by this process's volunteers

    @events.quitting.add_listener
    def _report_votes(environment, **_):
        out = os.environ.get("LAUNCH_VOTES_FILE")
        if out:
            Path(out).write_text(json.dumps(VOTES))


# --- the driver: servers, runs, report --------------------------------------------------------------------

def wait_healthy(port: int, limit: float = 120) -> None:
    end = time.time() + limit
    while time.time() < end:
        if healthy(port):
            return
        time.sleep(0.5)
    raise RuntimeError(f"nothing answered on 127.0.0.1:{port}")


def ws_for(store: str) -> Path:
    return WS_ROOT / f"launch-workspace-{store}"


def env_for(store: str) -> dict:
    env = {**os.environ, "GALAXALIGN_WORKSPACE": str(ws_for(store)), "GALAXALIGN_TRUST_PROXY": "1", "OMP_NUM_THREADS": "1"}
    env.pop("GALAXALIGN_REDIS_URL", None)
    if store == "postgresql":
        env["GALAXALIGN_DATABASE_URL"] = os.environ["GALAXALIGN_BENCH_POSTGRES_URL"]

    else:
        env.pop("GALAXALIGN_DATABASE_URL", None)
    return env


def prepare(store: str, n_accounts: int = 100) -> None:
    """The workspace of one store (SQLite, or PostgreSQL at $GALAXALIGN_BENCH_POSTGRES_URL): the demo
    survey (copied from ./workspace when `make demo` made it, else rendered) registered, n_accounts
    volunteer accounts, and no model — the same for both stores; ``sqlite-model`` copies ./workspace with
    its trained starter (proposals, predictions and the gate on the page)."""
    env = env_for(store)
    ws = ws_for(store)
    demo = ROOT / "workspace"
    if store == "sqlite-model":
        from galaxalign.store import open_store, relocate_paths

        shutil.rmtree(ws, ignore_errors=True)
        shutil.copytree(demo, ws, ignore=shutil.ignore_patterns("huey.db*", "worker.log"))
        st = open_store(f"sqlite:///{ws / 'galaxalign.db'}")
        relocate_paths(st, str(demo), str(ws))
        st.dispose()
    else:
        if (demo / "surveys" / "demo.h5").exists() and not (ws / "surveys" / "demo.h5").exists():
            (ws / "surveys").mkdir(parents=True, exist_ok=True)
            shutil.copy(demo / "surveys" / "demo.h5", ws / "surveys" / "demo.h5")  # the same sky, rendered once
        subprocess.run([str(BIN / "galaxalign"), "demo", "--workspace", str(ws), "--no-train"], env=env, check=True)
        code_reg = f"""
from galaxalign.data import load_survey
from galaxalign.store import open_store, register_survey, list_surveys
import os
st = open_store(os.environ.get("GALAXALIGN_DATABASE_URL") or "sqlite:///{ws}/galaxalign.db")
if not list_surveys(st):
    register_survey(st, load_survey("{ws}/surveys/demo.h5"), "demo", known_fraction=0.8)
"""
        subprocess.run([str(BIN / "python"), "-c", code_reg], env=env, check=True)
    code = f"""
from galaxalign.store import add_volunteer, open_store, NotFound, get_volunteer, set_project_settings
import os
st = open_store(os.environ.get("GALAXALIGN_DATABASE_URL") or "sqlite:///{ws}/galaxalign.db")
for k in range({n_accounts}):
    try:
        get_volunteer(st, f"load{{k}}")
    except NotFound:
        add_volunteer(st, f"load{{k}}", "volunteer", "launch-day-password-{{k}}".format(k=k))
set_project_settings(st, None, guest_votes_per_minute=120)
"""
    subprocess.run([str(BIN / "python"), "-c", code], env=env, check=True)


def serve(store: str, replicas: int) -> tuple[str, list]:
    """Start ``replicas`` web processes (and nginx in front when more than one); returns the URL and the processes."""
    env = env_for(store)
    procs, ports = [], []
    for _ in range(replicas):
        port = free_port()
        ports.append(port)
        procs.append(subprocess.Popen([str(BIN / "streamlit"), "run", str(ROOT / "app" / "streamlit_app.py"),
                                       "--server.port", str(port), "--server.address", "127.0.0.1",
                                       "--server.headless", "true", "--browser.gatherUsageStats", "false"],
                                      env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True))
    for port in ports:
        wait_healthy(port)
    if replicas == 1:
        return f"http://127.0.0.1:{ports[0]}", procs
    front = free_port()
    conf = Path(tempfile.mkdtemp(prefix="launch-nginx-"))
    (conf / "nginx.conf").write_text(nginx_conf(front, ports, conf))
    procs.append(subprocess.Popen(["nginx", "-c", str(conf / "nginx.conf"), "-g", "daemon off;"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True))
    wait_healthy(front)
    return f"http://127.0.0.1:{front}", procs


def nginx_conf(front: int, ports: list[int], folder: Path) -> str:
    """nginx in front of the replicas, sticky by the client's forwarded address (a Streamlit session lives
    in one process), WebSockets passed through. deploy/nginx.conf is the same shape for compose.yaml."""
    servers = "\n".join(f"        server 127.0.0.1:{p};" for p in ports)
    return f"""worker_processes 1;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
    upstream web {{
        hash $http_x_forwarded_for consistent;
{servers}
    }}
    server {{
        listen 127.0.0.1:{front};
        location / {{
            proxy_pass http://web;
            proxy_http_version 1.1;
            proxy_set_header Upgrade $http_upgrade;
            proxy_set_header Connection $connection_upgrade;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $http_x_forwarded_for;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


def stored_votes(store: str) -> int:
    code = """
import os
from sqlalchemy import func, select
from galaxalign.store import open_store
from galaxalign.store.models import Classification
st = open_store(os.environ.get("GALAXALIGN_DATABASE_URL") or "sqlite:///%s/galaxalign.db")
with st.read() as s:
    print(s.scalar(select(func.count()).select_from(Classification)))
""" % ws_for(store)
    return int(subprocess.run([str(BIN / "python"), "-c", code], env=env_for(store), check=True,
                              capture_output=True, text=True).stdout.strip())


def one_run(users: int, store: str, replicas: int, seconds: int, think: float) -> dict:
    url, procs = serve(store, replicas)
    before = stored_votes(store)
    tmp = Path(tempfile.mkdtemp(prefix="launch-"))
    accounts = [[f"load{k}", f"launch-day-password-{k}"] for k in range(100)]
    env = {**os.environ, "LAUNCH_THINK": str(think), "LAUNCH_ACCOUNTS": json.dumps(accounts),
           "LAUNCH_VOTES_FILE": str(tmp / "votes.json")}
    try:
        subprocess.run([str(BIN / "locust"), "-f", str(Path(__file__).resolve()), "--headless", "-u", str(users),
                        "-r", str(max(1, users // 10)), "-t", f"{seconds}s", "--host", url, "--csv",
                        str(tmp / "run"), "--stop-timeout", "30", "--only-summary"], env=env, check=False,
                       timeout=seconds + 180, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        stop_groups(procs)
    stats = {}
    import csv

    with open(tmp / "run_stats.csv") as f:
        for r in csv.DictReader(f):
            stats[r["Name"]] = r
    made = sum(json.loads((tmp / "votes.json").read_text()).values()) if (tmp / "votes.json").exists() else None
    errors = []
    if (tmp / "run_failures.csv").exists():
        with open(tmp / "run_failures.csv") as f:
            errors = [f"{r['Occurrences']}× {r['Name']}: {r['Error'][:160]}" for r in csv.DictReader(f)]
    stored = stored_votes(store) - before
    vn = stats.get("vote→next", {})
    row = {"name": f"{store}-{replicas}x-{users}", "seed": 0, "store": store, "replicas": replicas, "users": users,
           "seconds": seconds, "think": think,
           "votes": int(vn.get("Request Count", 0) or 0), "vote_failures": int(vn.get("Failure Count", 0) or 0),
           "p50_ms": float(vn.get("50%", 0) or 0), "p95_ms": float(vn.get("95%", 0) or 0),
           "p99_ms": float(vn.get("99%", 0) or 0),
           "answer_p95_ms": float(stats.get("answer", {}).get("95%", 0) or 0),
           "failures": sum(int(r.get("Failure Count", 0) or 0) for r in stats.values() if r["Name"] != "Aggregated"),
           "votes_per_s": round(int(vn.get("Request Count", 0) or 0) / seconds, 2),
           "votes_seen": made, "votes_stored": stored,
           "votes_lost": None if made is None else max(0, made - stored), "errors": errors}
    shutil.rmtree(tmp, ignore_errors=True)
    return row


def report() -> str:
    """The Markdown table of the runs in bench/results/launch.jsonl, in the order run."""
    rows = [json.loads(line) for line in LOG.read_text().splitlines()] if LOG.exists() else []
    out = ["| store | web processes | volunteers | vote clicks/s | vote→next p50 | p95 | p99 | answer p95 | vote→next errors "
           "| clicks whose galaxy had retired | votes seen → stored (lost) |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        # a click that completed a path but whose vote did not show: its galaxy retired while on screen (the
        # page moves on without a word; issue 24). Counted as clicks − votes seen, the same for every run logged
        refused = max(0, r["votes"] - (r["votes_seen"] or 0))
        share = f" ({refused / r['votes']:.0%})" if r["votes"] else ""
        app_errors = r["vote_failures"]
        out.append(f"| {r['store']} | {r['replicas']} | {r['users']} | {r['votes_per_s']:.2f} | {r['p50_ms'] / 1000:.2f} s "
                   f"| **{r['p95_ms'] / 1000:.2f} s** | {r['p99_ms'] / 1000:.2f} s | {r['answer_p95_ms'] / 1000:.2f} s "
                   f"| {app_errors} | {refused}{share} | {r['votes_seen']} → {r['votes_stored']} ({r['votes_lost']}) |")
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prepare", action="store_true")
    ap.add_argument("--store", choices=["sqlite", "postgresql", "sqlite-model"], default="sqlite")
    ap.add_argument("--users", type=int, nargs="+", default=[10])
    ap.add_argument("--replicas", type=int, default=1)
    ap.add_argument("--seconds", type=int, default=90)
    ap.add_argument("--think", type=float, default=4.0, help="mean seconds before each answer (0.5–1.5 × this)")
    ap.add_argument("--report", action="store_true", help="print the table of every run logged")
    a = ap.parse_args()
    if a.report:
        print(report())
        return
    if a.prepare:
        prepare(a.store)
        return
    for n in a.users:
        row = one_run(n, a.store, a.replicas, a.seconds, a.think)
        append_run(LOG, row)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
