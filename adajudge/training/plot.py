"""Loss and held-out accuracy curves of one or more runs, saved as a PNG (matplotlib, Agg backend)."""
from pathlib import Path


def plot_histories(histories: dict[str, dict], path, *, title: str = "") -> Path:
    """Plot training loss per step (left) and held-out accuracy per epoch (right) for each named run.

    Args:
        histories: run name -> history returned by `adajudge.training.loop.fit`.
        path: PNG file to write (parent folders created).
    """
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not histories:
        raise ValueError("histories: expected at least one run, got none")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(11, 4))
    for name, history in histories.items():
        steps = [entry["step"] for entry in history["steps"]]
        loss_axis.plot(steps, [entry["loss"] for entry in history["steps"]], label=name, linewidth=1)
        epochs = [entry for entry in history["epochs"] if entry["accuracy"] is not None]
        accuracy_axis.plot(
            [entry["epoch"] for entry in epochs], [entry["accuracy"] for entry in epochs], marker="o", label=name
        )
    loss_axis.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
    accuracy_axis.set(xlabel="epoch", ylabel="held-out accuracy", title="held-out pairwise accuracy", ylim=(0, 1.02))
    accuracy_axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for axis in (loss_axis, accuracy_axis):
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
