"""The studio page: one tab per loaded run (a dropdown when several of one kind), built on the tab modules.

Models that synthesize from label maps (``synthesize(seg, ...)``: SPADE, OASIS) get the label painter
(:mod:`ganzoo.studio.label_tab`); SinGAN, ConSinGAN and Semantic Pyramid runs their own tabs. Gradio is imported inside
:func:`build_app` only (never at ``import ganzoo``). Requests are queued and every model call shares one
queue slot (one call at a time); a bad input is a ``gr.Error`` message in the page, not a traceback.
"""
import functools
import os

from ganzoo.studio import handlers, label_tab, pyramid_tab, singan_tab
from ganzoo.studio.label_tab import api_name, read_label_upload  # noqa: F401 (the page's public helpers)

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
MODEL_QUEUE = "model"  # the concurrency group of every queued event: one model call at a time

# kind -> builder(gr, run name, model, first); first: the page's first run of that kind (plain elem_ids)
TABS = {"singan": singan_tab.build, "consingan": functools.partial(singan_tab.build, kind="consingan"),
        "semantic_pyramid": pyramid_tab.build}


def tab_kind(model):
    """``"labels"`` for a model that synthesizes from label maps, else its model type."""
    return "labels" if handlers.synthesizes_from_labels(model) else handlers.model_kind(model)


def build_app(models, class_names=None):
    """A ``gr.Blocks`` page with a tab per run (``models``: name -> loaded model), queued one call at a time.
    ``class_names``: names (list or class-list file) for label models whose dataset has none."""
    import gradio as gr

    tabs = dict(TABS, labels=functools.partial(label_tab.build, class_names=class_names))
    unsupported = {name: handlers.model_kind(m) for name, m in models.items() if tab_kind(m) not in tabs}
    if unsupported:
        raise ValueError("the studio has no tab for " + ", ".join(f"{n} ({k})" for n, k in unsupported.items())
                         + f" yet; supported: label-map models (synthesize(seg, ...)), {', '.join(TABS)}")
    with gr.Blocks(title="ganzoo studio", analytics_enabled=False) as app:
        gr.Markdown("# ganzoo studio")
        with gr.Tabs():
            for kind, runs in runs_by_kind(models).items():
                if len(runs) == 1:
                    with gr.Tab(f"{runs[0]} ({handlers.model_kind(models[runs[0]])})"):
                        tabs[kind](gr, runs[0], models[runs[0]], first=True)
                    continue
                with gr.Tab(f"{kind} ({len(runs)} runs)"):
                    _run_picker(gr, kind, runs, models, tabs[kind])
    for fn in app.fns.values():  # by default each event is its own group: make them all share one
        if fn.queue:
            fn.concurrency_id = MODEL_QUEUE
    return app.queue(default_concurrency_limit=1)


def runs_by_kind(models):
    """{kind: [run names]} in the order the runs were given."""
    kinds = {}
    for name, model in models.items():
        kinds.setdefault(tab_kind(model), []).append(name)
    return kinds


def _run_picker(gr, kind, runs, models, build):
    """Several runs of one kind share a tab: a dropdown shows one run's controls at a time."""
    picker = gr.Dropdown(runs, value=runs[0], label="run", elem_id=f"{kind}-run-picker")
    columns = []
    for i, name in enumerate(runs):
        with gr.Column(visible=i == 0) as column:
            build(gr, name, models[name], first=i == 0)
        columns.append(column)
    picker.change(lambda chosen: [gr.update(visible=name == chosen) for name in runs], picker, columns,
                  api_visibility="private")
