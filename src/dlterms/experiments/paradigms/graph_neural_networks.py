"""Graph neural networks: semi-supervised node classification on Zachary's karate club.

The 34 members split into two clubs ('Mr. Hi' and 'Officer'). Following Kipf & Welling, nodes have
no features of their own (one-hot identity, X = I), and only 2 members per club are labelled. A
two-layer GCN propagates the labels along the friendship edges; an MLP on the same node features
has no edges to use, so for an unlabelled node its prediction cannot depend on anything learned.
Repeated over 10 random choices of labelled nodes; accuracy is on the 30 unlabelled nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx
import numpy as np
import torch
from torch import nn

from dlterms.nn.graph import GCN, edge_index_from_networkx, normalized_adjacency
from dlterms.optim import Adam
from dlterms.run import Run, experiment
from dlterms.training import fit


@dataclass
class Config:
    labelled_per_class: int = 2  # labelled nodes per club
    splits: int = 10  # random choices of the labelled nodes
    hidden: int = 16  # hidden units of GCN and MLP
    epochs: int = 200  # full-batch Adam steps
    lr: float = 0.01
    weight_decay: float = 5e-4  # Kipf & Welling's L2 on the weights


def _train(model, forward, labelled, y, cfg, seed):
    opt = Adam(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    fit(
        model,
        (labelled, y[labelled]),
        loss_fn=nn.functional.cross_entropy,
        optimizer=opt,
        epochs=cfg.epochs,
        batch_size=None,
        seed=seed,
        forward=lambda m, idx: forward(m)[idx],
    )
    with torch.no_grad():
        model.eval()
        return forward(model)


@experiment("graph-neural-networks")
def graph_neural_networks(run: Run) -> None:
    cfg = Config()
    g = nx.karate_club_graph()
    n = g.number_of_nodes()
    y = torch.tensor([int(g.nodes[i]["club"] == "Officer") for i in range(n)])
    adj = normalized_adjacency(edge_index_from_networkx(g), n).to(run.device)
    x = torch.eye(n, device=run.device)
    y = y.to(run.device)
    rng = run.rng(1)
    acc_gcn, acc_mlp, last = [], [], None
    for s in run.track(range(cfg.splits), message="splits"):
        labelled = np.concatenate(
            [rng.choice(np.flatnonzero(y.cpu().numpy() == c), cfg.labelled_per_class, replace=False) for c in (0, 1)]
        )
        labelled_t = torch.as_tensor(np.sort(labelled), device=run.device)
        mask = torch.ones(n, dtype=torch.bool, device=run.device)
        mask[labelled_t] = False
        torch.manual_seed(run.seed * 100 + s)
        gcn = GCN(n, cfg.hidden, 2).to(run.device)
        out_g = _train(gcn, lambda m: m(x, adj), labelled_t, y, cfg, run.seed + s)
        torch.manual_seed(run.seed * 100 + s)
        mlp = nn.Sequential(nn.Linear(n, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, 2)).to(run.device)
        out_m = _train(mlp, lambda m: m(x), labelled_t, y, cfg, run.seed + s)
        acc_gcn.append((out_g.argmax(1) == y)[mask].float().mean().item())
        acc_mlp.append((out_m.argmax(1) == y)[mask].float().mean().item())
        if last is None:
            last = (gcn, labelled, out_g.argmax(1).cpu().numpy())
    mg, mm = float(np.mean(acc_gcn)), float(np.mean(acc_mlp))
    run.metric("gcn_acc_unlabelled", round(mg, 4), key=True)
    run.metric("mlp_acc_unlabelled", round(mm, 4))
    run.metric("gcn_acc_min", round(min(acc_gcn), 4))
    run.metric("gcn_acc_per_split", [round(a, 4) for a in acc_gcn])
    run.metric("mlp_acc_per_split", [round(a, 4) for a in acc_mlp])
    run.check(
        "GCN classifies the unlabelled members well from 2 labels per club (mean over splits)",
        mg >= 0.85,
        observed=round(mg, 4),
        expected=">= 0.85",
    )
    run.check(
        "GCN beats an MLP on the node features alone (mean over splits)",
        mg >= mm + 0.2,
        observed=round(mg - mm, 4),
        expected=">= 0.2 accuracy points above the MLP",
    )
    run.check(
        "GCN beats the MLP on every split",
        all(a > b for a, b in zip(acc_gcn, acc_mlp)),
        observed=sum(a > b for a, b in zip(acc_gcn, acc_mlp)),
        expected=f"{cfg.splits} of {cfg.splits}",
    )

    gcn, labelled, pred = last
    with torch.no_grad():
        h = gcn.embed(x, adj).cpu().numpy()
    h2 = h @ np.linalg.svd(h - h.mean(0), full_matrices=False)[2][:2].T  # first 2 principal axes
    with run.figure(
        "karate",
        alt="karate club graph coloured by the GCN's predicted club, labelled nodes "
        "ringed; right: the GCN's hidden features projected to 2-D",
        figsize=(9, 4),
    ) as fig:
        ax1, ax2 = fig.subplots(1, 2)
        pos = nx.spring_layout(g, seed=run.seed)
        colors = ["tab:blue" if p == 0 else "tab:orange" for p in pred]
        nx.draw_networkx_edges(g, pos, ax=ax1, alpha=0.3)
        nx.draw_networkx_nodes(g, pos, ax=ax1, node_color=colors, node_size=120)
        nx.draw_networkx_nodes(
            g, pos, nodelist=list(labelled), ax=ax1, node_color="none", edgecolors="k", linewidths=2, node_size=220
        )
        ax1.set_title("GCN prediction (ringed: labelled)")
        ax1.axis("off")
        yt = y.cpu().numpy()
        for c, name in ((0, "Mr. Hi"), (1, "Officer")):
            ax2.scatter(h2[yt == c, 0], h2[yt == c, 1], label=f"true: {name}", s=25)
        ax2.set_title("hidden features (PCA)")
        ax2.legend()
