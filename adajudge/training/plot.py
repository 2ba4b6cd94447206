"""Loss and held-out accuracy curves of one or more runs, saved as a PNG (matplotlib, Agg backend)."""
from pathlib import Path


def plot_histories(histories: dict[str, dict], path, *, title: str = "") -> Path:
    """Plot each named run's training loss per step on its own axes (losses differ in scale: a focal loss
    is far below a BT loss at the same accuracy), then every run's held-out accuracy per epoch on one axis.

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
    figure, axes = plt.subplots(1, len(histories) + 1, figsize=(4.6 * (len(histories) + 1), 4), squeeze=False)
    *loss_axes, accuracy_axis = axes[0]
    colors = matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, ((name, history), loss_axis) in enumerate(zip(histories.items(), loss_axes)):
        color = colors[index % len(colors)]
        steps = [entry["step"] for entry in history["steps"]]
        loss_axis.plot(steps, [entry["loss"] for entry in history["steps"]], color=color, linewidth=1)
        loss_axis.set(xlabel="optimizer step", ylabel="training loss", title=f"training loss: {name}")
        epochs = [entry for entry in history["epochs"] if entry["accuracy"] is not None]
        accuracy_axis.plot(
            [entry["epoch"] for entry in epochs], [entry["accuracy"] for entry in epochs], marker="o", label=name,
            color=color,
        )
    accuracy_axis.set(xlabel="epoch", ylabel="held-out accuracy", title="held-out pairwise accuracy", ylim=(0, 1.02))
    accuracy_axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    accuracy_axis.legend()
    for axis in axes[0]:
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path
