"""Run a list of metrics on a model: what ``ganzoo-eval`` and the trainer's periodic evaluation share."""


def run_metrics(metrics, model, dataset, device):
    """{result key: value} of every metric (a built METRICS entry, called as ``metric(model, dataset, device)``):
    numbers and one-element tensors as floats, text (e.g. a ``*_warning``), lists and dicts as they are. A later
    metric's key of the same name wins."""
    results = {}
    for metric in metrics:
        for key, value in metric(model, dataset, device).items():
            results[key] = value if isinstance(value, (str, list, dict)) else float(value)
    return results
