"""The sidebar: load data (example or uploads), see what was loaded, choose the model."""

from __future__ import annotations

import panel as pn
import param

from ..data import display_name, max_upload_bytes, too_large_message
from ..state import METHODS, ExplorerState
from .style import escape, look, titled
from .upload import SizeLimitedFileInput

__all__ = ["DataPanel", "ModelControls"]

_UPLOADS = (
    ("phenotypes", "Phenotypes CSV", "IDs in the first column, one column per trait (NA = missing)"),
    ("kinship", "Kinship CSV", "n x n matrix, IDs as row and column labels"),
    ("covariates", "Covariates CSV (optional)", "IDs, then numeric or text columns (text becomes indicators)"),
)


class DataPanel(pn.viewable.Viewer):
    """Load the example or upload CSV files; show n, phenotypes, covariates and dropped IDs."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        self._example = pn.widgets.Button(
            **titled(pn.widgets.Button, "Load the example data"),
            **look(pn.widgets.Button, "primary", "outline"),
            sizing_mode="stretch_width",
        )
        self._example.on_click(self._load_example)
        # files above the limit are refused by the browser (a clear message, not a dropped connection)
        limit = max_upload_bytes()
        self._inputs: dict[str, SizeLimitedFileInput] = {}
        rows = []
        for kind, label, help_text in _UPLOADS:
            widget = SizeLimitedFileInput(
                accept=".csv,.txt,.tsv,text/csv",
                max_bytes=limit,
                label=label,
                description=help_text,
                sizing_mode="stretch_width",
                margin=(5, 10),
                css_classes=[f"upload-{kind}"],
            )
            widget.param.watch(self._make_handler(kind), "value")
            widget.param.watch(self._make_refusal_handler(kind), "rejected")
            self._inputs[kind] = widget
            rows.append(widget)
        self._cross = SizeLimitedFileInput(
            accept=".zip,application/zip", max_bytes=limit, label="Or an R/qtl2 cross (.zip)",
            description=("control file and CSVs as R/qtl2's read_cross2 reads them: phenotypes and covariates "
                         "from the cross, kinship from its genotype probabilities (computed here)"),
            sizing_mode="stretch_width", margin=(5, 10), css_classes=["upload-cross"],
        )
        self._cross.param.watch(self._cross_uploaded, "value")
        self._cross.param.watch(self._make_refusal_handler("cross"), "rejected")
        self._inputs["cross"] = self._cross
        rows.append(self._cross)
        self._pending = pn.pane.Markdown(pn.bind(self._pending_text, self.state.param.pending), margin=(0, 10))
        self._summary = pn.pane.Markdown(
            pn.bind(self._summary_text, self.state.param.dataset, self.state.param.messages),
            css_classes=["data-summary"],
            margin=(0, 10),
        )
        self._layout = pn.Column(
            pn.pane.Markdown("### Data", margin=(0, 10)),
            self._summary,
            self._example,
            pn.pane.Markdown("Or upload your own CSV files:", margin=(8, 10, 0, 10)),
            *rows,
            self._pending,
            sizing_mode="stretch_width",
        )
        self.state.param.watch(self._show_busy, "busy")

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def file_input(self, kind: str) -> SizeLimitedFileInput:
        """The upload widget for ``kind`` (phenotypes, kinship, covariates or cross)."""
        return self._inputs[kind]

    def _show_busy(self, event: param.parameterized.Event) -> None:
        # the summary spins; the upload widgets stay usable for the next file
        self._summary.loading = bool(event.new)

    def _make_handler(self, kind: str):
        async def handler(event: param.parameterized.Event) -> None:
            if not event.new:
                return
            await self.state.areceive_upload(kind, self._inputs[kind].filename, event.new)

        return handler

    async def _cross_uploaded(self, event: param.parameterized.Event) -> None:
        if event.new:
            await self.state.areceive_cross_upload(self._cross.filename, event.new)

    def _make_refusal_handler(self, kind: str):
        def handler(event: param.parameterized.Event) -> None:
            refused = event.new
            if not refused:
                return
            if refused.get("reason") == "too large":
                text = too_large_message(kind, refused["filename"], refused["size"], refused["limit"])
            else:
                text = (
                    f"the browser could not read the {kind} file '{display_name(refused['filename'])}'; "
                    "the data loaded before are still in use"
                )
            self.state.notify("error", text)

        return handler

    def _load_example(self, _event=None) -> None:
        self.state.busy = True
        try:
            if self.state.load_example():
                self.state.notify("info", "example data loaded")
        finally:
            self.state.busy = False

    @staticmethod
    def _pending_text(pending: dict) -> str:
        if not pending:
            return ""
        have = ", ".join(f"{escape(k)}: `{escape(v)}`" for k, v in pending.items())
        missing = [k for k in ("phenotypes", "kinship") if k not in pending]
        tail = f" Waiting for the {' and '.join(missing)} file." if missing else ""
        return f"<small>Uploaded: {have}.{tail}</small>"

    def _summary_text(self, dataset, messages) -> str:
        info = self.state.data_summary()
        if not info:
            return "No data loaded yet: load the example or upload files below."
        phen = info["phenotypes"]
        shown = ", ".join(f"{escape(p)} ({n})" for p, n in list(phen.items())[:12])
        if len(phen) > 12:
            shown += f", … {len(phen) - 12} more"
        cov = ", ".join(escape(c) for c in info["covariates"]) or "none"
        lines = [
            f"**Source:** {escape(info['source'])}",
            f"**n = {info['n']}** individuals in every file",
            f"**Phenotypes ({len(phen)}, observed n):** {shown}",
            f"**Covariates:** {cov}",
        ]
        if info["n_dropped"]:
            why = "; ".join(f"{v} {escape(k)}" for k, v in info["dropped"].items() if v)
            lines.append(f"**Dropped by ID alignment:** {info['n_dropped']} ({why})")
        else:
            lines.append("**Dropped by ID alignment:** none")
        for text in messages:
            lines.append(f"<small>⚠ {escape(text)}</small>")
        return "\n\n".join(lines)


class ModelControls(pn.viewable.Viewer):
    """Phenotype, covariates, ML or REML, and the overlay of both curves."""

    state = param.ClassSelector(class_=ExplorerState, doc="The session's state.")

    def __init__(self, **params) -> None:
        super().__init__(**params)
        s = self.state
        self._phenotype = pn.widgets.Select.from_param(
            s.param.phenotype, name="Phenotype", sizing_mode="stretch_width", css_classes=["phenotype-select"]
        )
        self._method = pn.widgets.RadioButtonGroup.from_param(
            s.param.method,
            options={label: key for key, label in METHODS.items()},
            name="Method",
            **look(pn.widgets.RadioButtonGroup, "primary", "outline"),
            sizing_mode="stretch_width",
        )
        self._covariates = pn.widgets.Checkbox.from_param(s.param.use_covariates, name="Use the covariates")
        self._overlay = pn.widgets.Checkbox.from_param(
            s.param.overlay, name="Overlay the ML and REML curves", css_classes=["overlay-toggle"]
        )
        self._cov_note = pn.pane.Markdown(
            pn.bind(self._covariate_text, s.param.dataset, s.param.use_covariates, s.param.phenotype), margin=(0, 10),
            css_classes=["model-description"],
        )
        s.param.watch(self._sync_enabled, "dataset")
        self._sync_enabled()
        self._layout = pn.Column(
            pn.pane.Markdown("### Model", margin=(0, 10)),
            self._phenotype,
            pn.pane.Markdown("Estimate by", margin=(0, 10)),
            self._method,
            self._covariates,
            self._cov_note,
            self._overlay,
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    def _sync_enabled(self, *_events) -> None:
        self._covariates.disabled = not self.state.has_covariates

    def _covariate_text(self, dataset, use_covariates, phenotype=None) -> str:
        model = self.state.model_description() if dataset is not None else None
        return f"<small>{escape(model.text)}</small>" if model is not None else ""
