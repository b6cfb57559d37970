"""Anomaly detection: an autoencoder trained on one digit only flags the other nine.

The one-class protocol on scikit-learn's digits: for each class c in turn, an autoencoder
(64-32-8-32-64, `dlterms.models.autoencoder.Autoencoder`) is trained on the training images of c
only. Its reconstruction error then scores the test images: held-out images of c are normal, the test
images of the nine other digits are the anomalies (never seen in training). ROC-AUC is measured with
`dlterms.metrics.roc_auc_score`, and the same protocol is run with scikit-learn's IsolationForest
(200 trees) as the reference detector. A threshold at the 95th percentile of held-out normal
training scores gives the detection rate and false-alarm rate at that operating point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.ensemble import IsolationForest

from dlterms.data.datasets import digits, train_val_split
from dlterms.methods.anomaly import ReconstructionDetector
from dlterms.metrics import roc_auc_score
from dlterms.models.autoencoder import Autoencoder
from dlterms.run import Run, experiment


@dataclass(frozen=True)
class Config:
    """Parameters of the anomaly-detection experiment; the defaults are the recorded run."""

    code_size: int = 8  # autoencoder bottleneck
    hidden: tuple[int, ...] = (32,)  # encoder hidden widths (decoder mirrored)
    epochs: int = 150  # training epochs on one class (~100 images)
    lr: float = 3e-3  # Adam step size
    trees: int = 200  # IsolationForest trees

    def __post_init__(self) -> None:
        if self.code_size < 1 or self.epochs < 1 or self.trees < 1:
            raise ValueError(
                f"code_size, epochs and trees must be >= 1, got {self.code_size!r}, {self.epochs!r}, {self.trees!r}"
            )


@experiment("anomaly-detection", config=Config)
def anomaly_detection(run: Run, cfg: Config) -> None:
    d = digits(test_size=0.3, seed=run.seed)
    auc_ae, auc_if, det, fa = [], [], [], []
    for c in run.track(range(10), message="one class at a time"):
        xn = d.x_train[d.y_train == c]
        x_fit, _, x_val, _ = train_val_split(xn, torch.zeros(len(xn), dtype=torch.int64), 0.2, seed=run.seed)
        y_test = (d.y_test != c).numpy().astype(int)  # 1 = anomaly
        torch.manual_seed(run.seed * 10 + c)
        detector = ReconstructionDetector(Autoencoder(64, cfg.code_size, hidden=cfg.hidden).to(run.device))
        detector.fit(x_fit.to(run.device), epochs=cfg.epochs, lr=cfg.lr, batch_size=32, seed=run.seed + c)
        s = detector.score(d.x_test).cpu().numpy()
        auc_ae.append(roc_auc_score(y_test, s))
        detector.set_threshold(x_val, 0.95)
        pred = detector.predict(d.x_test).cpu().numpy()
        det.append(pred[y_test == 1].mean())
        fa.append(pred[y_test == 0].mean())
        forest = IsolationForest(n_estimators=cfg.trees, random_state=run.seed).fit(xn.numpy())
        auc_if.append(roc_auc_score(y_test, -forest.score_samples(d.x_test.numpy())))  # higher = more anomalous
    m_ae, m_if = float(np.mean(auc_ae)), float(np.mean(auc_if))
    run.metric("autoencoder_mean_auroc", m_ae, key=True)
    run.metric("isolation_forest_mean_auroc", m_if)
    run.metric("autoencoder_auroc_per_class", auc_ae)
    run.metric("isolation_forest_auroc_per_class", auc_if)
    run.metric("autoencoder_min_auroc", min(auc_ae))
    run.metric("detection_rate_at_95pct_threshold", float(np.mean(det)))
    run.metric("false_alarm_rate_at_95pct_threshold", float(np.mean(fa)))
    run.check_ge("autoencoder trained on normal data only: mean ROC-AUC over the 10 one-class tasks", m_ae, 0.9)
    run.check_ge("autoencoder ROC-AUC >= 0.9 for every choice of normal class", min(auc_ae), 0.9)
    run.check(
        "compared with scikit-learn's IsolationForest: the autoencoder is at least as good on average",
        m_ae >= m_if,
        observed=f"AE {m_ae:.4f}, IF {m_if:.4f}",
        expected="AE >= IF",
    )

    with run.figure(
        "auroc-per-class",
        alt="ROC-AUC of the autoencoder and of IsolationForest for each digit taken as the normal class",
    ) as fig:
        ax = fig.subplots()
        idx = np.arange(10)
        ax.bar(idx - 0.2, auc_ae, 0.4, label="autoencoder (ours)")
        ax.bar(idx + 0.2, auc_if, 0.4, label="IsolationForest (scikit-learn)")
        ax.axhline(0.9, ls="--", c="gray")
        ax.set_ylim(0.5, 1.0)
        ax.set_xticks(idx)
        ax.set_xlabel("normal class")
        ax.set_ylabel("ROC-AUC (other digits = anomalies)")
        ax.legend(loc="lower right")
