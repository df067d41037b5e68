"""Sample submission for the digits competition: a small neural network in PyTorch.

The harness runs your image twice, with no network and a read-only root filesystem:

  python3 /app/main.py train   reads /data/train, saves the model in /model
  python3 /app/main.py infer   reads /data/test and /model, writes /output/predictions.csv

Only /tmp, /model (train phase) and /output (infer phase) are writable. Start from here:
change the model in make_model() and the training in fit(), keep the input/output code.
"""

import csv
import os
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

# The harness tells us the seed and how many CPUs we may use; use them, so that a rerun of
# the same image on the same data gives exactly the same predictions.
SEED = int(os.environ.get("HARNESS_SEED", "0"))
CPUS = max(1, int(float(os.environ.get("HARNESS_CPUS", "1"))))
torch.set_num_threads(CPUS)
torch.set_num_interop_threads(1)
torch.use_deterministic_algorithms(True)

EPOCHS, BATCH_SIZE, FOLDS = 30, 32, 5


def load(split):
    """Read /data/<split>: the ids, the images as a float tensor (n, 64) in [0, 1], the labels."""
    folder = Path("/data") / split
    with open(folder / f"{split}.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    ids = [row["id"] for row in rows]
    pixels = [np.asarray(Image.open(folder / "images" / f"{i}.png"), dtype=np.float32) for i in ids]
    x = torch.from_numpy(np.stack(pixels).reshape(len(ids), -1) / 255)
    y = torch.tensor([int(row["label"]) for row in rows]) if "label" in rows[0] else None
    return ids, x, y


def make_model():
    # 8x8 = 64 pixels in, one score per digit out.
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10))


def fit(x, y):
    torch.manual_seed(SEED)  # same initial weights and batch order every run
    model = make_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x)).split(BATCH_SIZE):
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(model(x[batch]), y[batch])
            loss.backward()
            optimizer.step()
    return model


def predict(model, x):
    model.eval()
    with torch.no_grad():
        return model(x).argmax(dim=1)


def train():
    ids, x, y = load("train")
    # k-fold cross-validation: train on 4/5 of the data, measure on the other 1/5, five times.
    folds = np.array_split(np.random.default_rng(SEED).permutation(len(ids)), FOLDS)
    scores = []
    for k, held_out in enumerate(folds):
        keep = np.setdiff1d(np.arange(len(ids)), held_out)
        model = fit(x[keep], y[keep])
        scores.append((predict(model, x[held_out]) == y[held_out]).float().mean().item())
        print(f"fold {k + 1}/{FOLDS}: accuracy {scores[-1]:.4f}")
    print(f"cross-validation accuracy: {np.mean(scores):.4f}")
    # The final model learns from all the training data.
    torch.save(fit(x, y).state_dict(), "/model/model.pt")
    print(f"trained on {len(ids)} images, model saved to /model/model.pt")


def infer():
    ids, x, _ = load("test")
    model = make_model()
    model.load_state_dict(torch.load("/model/model.pt", weights_only=True))
    labels = predict(model, x).tolist()
    with open("/output/predictions.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "label"])  # every test id exactly once
        writer.writerows(zip(ids, labels))
    print(f"wrote {len(ids)} predictions to /output/predictions.csv")


if __name__ == "__main__":
    phase = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("HARNESS_PHASE", "")
    if phase == "train":
        train()
    elif phase == "infer":
        infer()
    else:
        sys.exit(f"usage: main.py train|infer (got {phase!r})")
