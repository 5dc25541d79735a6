"""Helpers for the browser tests (tests/test_browser.py) and the README screenshots.

A throwaway JupyterLab server (free loopback port, token, every Jupyter directory in a temporary
folder) driven by Debian's Chromium through Playwright. Used by ``tests/test_browser.py`` and by
``python -m tools.screenshots``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM = Path(os.environ.get("NNCOURSE_CHROMIUM", "/usr/bin/chromium"))
# what Chromium needs in a container: no user namespaces, no GPU, a small /dev/shm, no network
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 800}
KERNEL_IDLE = "Python 3 (ipykernel) | Idle"

# JupyterLab user settings written into the temporary settings directory
LAB_SETTINGS = {
    # no "would you like to receive news?" toast, no update check (and no network request)
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false", "checkForUpdates": False},
    # every cell stays in the DOM, so a test can read all prompts and outputs
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


# --------------------------------------------------------------------------- availability
def browser_unavailable_reason() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if not CHROMIUM.exists():
        return (
            f"{CHROMIUM} is missing: install Debian's chromium (`make setup` does it as root: "
            "apt-get install -y chromium)"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the Python package `playwright` is not installed (pip install -r requirements.txt)"
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------- notebooks
def _source(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _solution_cells(nb) -> dict[str, str]:
    answers = {}
    for cell in nb["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            answers[meta["grade_id"]] = _source(cell)
    return answers


def strip_solution_markers(source: str) -> str:
    lines = [line for line in source.splitlines() if line.strip() not in ("### BEGIN SOLUTION", "### END SOLUTION")]
    return "\n".join(lines)


def filled_notebook(learner_nb: Path, solution_nb: Path, skip: frozenset[str] = frozenset()) -> dict:
    """The learner notebook with its answer cells filled from the worked solutions.

    Answers whose grade_id is in ``skip`` keep the learner's stub (an unanswered exercise).
    """
    nb = json.loads(Path(learner_nb).read_text(encoding="utf-8"))
    answers = _solution_cells(json.loads(Path(solution_nb).read_text(encoding="utf-8")))
    filled = copy.deepcopy(nb)
    for cell in filled["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("solution") and cell["cell_type"] == "code":
            grade_id = meta["grade_id"]
            if grade_id not in answers:
                raise KeyError(f"{solution_nb} has no answer cell {grade_id!r}")
            if grade_id not in skip:
                cell["source"] = strip_solution_markers(answers[grade_id])
    return filled


def answer_ids(notebook: Path) -> list[str]:
    nb = json.loads(Path(notebook).read_text(encoding="utf-8"))
    return [
        c["metadata"]["nbgrader"]["grade_id"]
        for c in nb["cells"]
        if c.get("metadata", {}).get("nbgrader", {}).get("solution")
    ]


def write_notebook(nb: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- the server
def jupyter_env(home: Path) -> dict:
    """Environment for a Jupyter server whose config, data, runtime, workspace and settings
    directories all live under ``home`` (nothing of the user's ~/.jupyter is read or written)."""
    dirs = {
        "JUPYTER_CONFIG_DIR": home / "config",
        "JUPYTER_DATA_DIR": home / "data",
        "JUPYTER_RUNTIME_DIR": home / "runtime",
        "JUPYTERLAB_WORKSPACES_DIR": home / "workspaces",
        "JUPYTERLAB_SETTINGS_DIR": home / "settings",
        "IPYTHONDIR": home / "ipython",
    }
    for d in dirs.values():
        d.mkdir(parents=True, exist_ok=True)
    for plugin, values in LAB_SETTINGS.items():
        package, name = plugin.rsplit("/", 1)
        target = dirs["JUPYTERLAB_SETTINGS_DIR"] / package / f"{name}.jupyterlab-settings"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(values, indent=2))
    env = dict(os.environ)
    env.pop("JUPYTER_PATH", None)
    env.pop("JUPYTER_PREFER_ENV_PATH", None)
    env.update({k: str(v) for k, v in dirs.items()})
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    # this interpreter's scripts (jupyter, nbgrader's alembic) come first on PATH
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


class PortTaken(Exception):
    pass


class JupyterLab:
    """A JupyterLab server on a free loopback port with a random token."""

    def __init__(
        self,
        root_dir: Path,
        home: Path,
        *,
        cwd: Path | None = None,
        env: dict | None = None,
        startup_timeout: float = 90.0,
    ):
        self.root_dir = Path(root_dir)
        self.home = Path(home)
        self.token = secrets.token_hex(16)
        self.env = jupyter_env(self.home)
        self.env.update(env or {})
        self.log_path = self.home / "server.log"
        for _attempt in range(3):  # another process may take the free port before the server
            self.port = free_port()
            self.base = f"http://127.0.0.1:{self.port}"
            self._start(cwd or self.root_dir)
            try:
                self._wait_ready(startup_timeout)
                return
            except PortTaken:
                continue
        raise RuntimeError(f"jupyter lab found no free port:\n{self.log()}")

    def _start(self, cwd: Path) -> None:
        args = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.news_url=",
            "--ServerApp.terminals_enabled=False",
        ]
        if os.geteuid() == 0:
            args.append("--allow-root")  # jupyter refuses to start as root without it
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            args, cwd=cwd, env=self.env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._log.close()
                if "already in use" in self.log():
                    raise PortTaken(self.port)
                raise RuntimeError(f"jupyter lab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("GET", "/api/status")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"jupyter lab did not answer within {timeout:.0f} s:\n{self.log()}")

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def url(self, path: str = "/lab") -> str:
        sep = "&" if "?" in path else "?"
        return f"{self.base}{path}{sep}token={self.token}"

    def api(self, method: str, path: str, body=None, timeout: float = 10.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
        return json.loads(raw) if raw else None

    def shutdown_kernels(self, path: str | None = None) -> None:
        """Shut down the kernel of the notebook at ``path`` (every kernel if None)."""
        for session in self.api("GET", "/api/sessions"):
            if path is not None and session.get("path") != path:
                continue
            try:
                self.api("DELETE", f"/api/sessions/{session['id']}")
            except urllib.error.HTTPError:
                pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.api("POST", "/api/shutdown", timeout=5)
                self.proc.wait(timeout=15)
            except Exception:
                pass
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._log.close()


# --------------------------------------------------------------------------- the browser
def expect(*args, **kwargs):
    """playwright's ``expect``, imported only when used (the module loads without playwright)."""
    from playwright.sync_api import expect as _expect

    _expect.set_options(timeout=30_000)  # a loaded 2-core machine is slow to render
    return _expect(*args, **kwargs)


def launch_browser(playwright):
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)


CELLS_JS = """
() => Array.from(document.querySelectorAll('.jp-NotebookPanel .jp-Notebook .jp-Cell')).map(c => ({
    type: c.classList.contains('jp-CodeCell') ? 'code'
        : (c.classList.contains('jp-MarkdownCell') ? 'markdown' : 'raw'),
    prompt: ((c.querySelector('.jp-InputPrompt') || {}).textContent || '').trim(),
    outputs: Array.from(c.querySelectorAll('.jp-OutputArea-output')).map(o => ({
        mime: o.getAttribute('data-mime-type') || '', text: o.textContent || ''})),
}))
"""

EXECUTED = re.compile(r"^\[\d+\]:$")


class LabPage:
    """One JupyterLab tab in the browser, driven the way a person would: menus and buttons."""

    def __init__(self, page, lab: JupyterLab):
        self.page = page
        self.lab = lab

    # ---- navigation
    def open_lab(self, workspace: str, path: str | None = None, timeout: float = 90) -> None:
        """Load JupyterLab in a fresh named workspace, optionally opening ``path``."""
        url = f"/lab/workspaces/{workspace}" + (f"/tree/{path}" if path else "")
        self.page.goto(self.lab.url(url))
        self.page.locator("#jp-main-dock-panel").wait_for(timeout=timeout * 1000)
        if path and path.endswith(".ipynb"):
            self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(timeout=timeout * 1000)

    def menu(self, menu_label: str, command: str) -> None:
        """Click a main-menu entry, e.g. ("Run", "runmenu:run-all")."""
        label = re.compile(rf"^\s*{re.escape(menu_label)}\s*$")
        self.page.locator(".lm-MenuBar-item", has_text=label).first.click()
        item = self.page.locator(f'.lm-Menu-item[data-command="{command}"]').first
        item.click()

    # ---- kernel and cells
    @property
    def kernel_status(self):
        return self.page.locator('.jp-StatusBar-TextItem[title^="Change kernel"]')

    def wait_kernel_idle(self, timeout: float = 120) -> None:
        """The status bar (not the toolbar indicator, which turns idle too early) reads Idle."""
        expect(self.kernel_status).to_have_text(KERNEL_IDLE, timeout=timeout * 1000)

    def cells(self) -> list[dict]:
        return self.page.evaluate(CELLS_JS)

    def start_run_all(self) -> None:
        """Run > Run All Cells, once the status bar says the kernel is idle."""
        self.wait_kernel_idle()
        self.menu("Run", "runmenu:run-all")

    def wait_run_all(self, executable: int, timeout: float = 300) -> list[dict]:
        """Wait until every cell ran, or Run All stopped at an error; return the cells.

        ``executable``: how many code cells have code (JupyterLab does not run empty ones).
        Done means: the status bar reads Idle and no cell is queued (``[*]``), three polls in a
        row (the kernel is briefly idle between two cells).
        """
        deadline = time.monotonic() + timeout
        stable = 0
        while time.monotonic() < deadline:
            cells = self.cells()
            prompts = [c["prompt"] for c in cells if c["type"] == "code"]
            busy = "[*]:" in prompts
            ran = sum(bool(EXECUTED.match(p)) for p in prompts)
            idle = self.kernel_status.text_content() == KERNEL_IDLE
            stable = stable + 1 if (idle and not busy and ran) else 0
            if stable >= 3 or (ran >= executable and idle and not busy):
                return cells
            self.page.wait_for_timeout(400)
        raise TimeoutError(f"Run All did not finish within {timeout:.0f} s")

    def save(self, timeout: float = 30) -> None:
        """File > Save Notebook, then wait until the tab is no longer marked as modified."""
        self.menu("File", "docmanager:save")
        self.page.wait_for_function(
            "() => !document.querySelector('.lm-TabBar-tab.jp-mod-current.jp-mod-dirty')", timeout=timeout * 1000
        )

    def scroll_to_cell(self, index: int) -> None:
        self.page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").nth(index).evaluate(
            "el => el.scrollIntoView({block: 'start'})"
        )
        self.page.wait_for_timeout(300)  # let the scrolled cells render


# --------------------------------------------------------------------------- screenshots
def save_png(png: bytes, path: Path, colors: int = 256) -> int:
    """Write a screenshot as a small palette PNG (UI pictures survive 256 colours well)."""
    from io import BytesIO

    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.open(BytesIO(png)).convert("RGB")
    img = img.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, format="PNG", optimize=True)
    return path.stat().st_size
