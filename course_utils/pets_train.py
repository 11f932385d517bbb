"""Notebook 6's models: heads trained on the frozen ImageNet backbone's cached features, in seconds.

    size = pets_size(device)               photos and resolution: a CPU subset, or everything on a GPU
    splits = pets_splits(size)             {"train", "val", "test"}: (torchvision Subset, photo names)
    classifier = pretrained_classifier(backbone)    VGG11Classifier, 2 classes (cat, dog), frozen backbone
    trained_classifier_head(classifier, features)   trains fc_out alone, on GAP(pool5) of the cached features
    fcns = trained_fcn_heads(classifier, features)  FCN-32s -> 16s -> 8s, heads alone, from the trimaps

The heads are the only trained weights, so only they are checkpointed (course_utils.checkpoints,
a few kB each, under the checkpoint folder's pets/): the backbone is the downloaded one. A
head's configuration names the features it was trained on, so new photos, another image size or
other weights retrain it instead of reusing it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Subset, TensorDataset

from .checkpoints import load_or_train
from .data import IGNORE_INDEX
from .i18n import tr
from .models import FCN_VARIANTS, VGG11FCN, VGG11Backbone, VGG11Classifier, VGG11SkipFCN
from .paths import checkpoint_dir
from .pets import SPECIES, PetsDataError, image_ids, pets_dataset
from .progress import progress_bar
from .train import fit, make_loader, make_optimizer, seed_everything

# ---------------------------------------------------------------------------- sizes and splits


@dataclass(frozen=True)
class PetsSize:
    """Which photos notebook 6 uses, and at what resolution (S x S after the centre crop)."""

    image_size: int
    train: int | None  # training photos from "trainval" (None: all but the validation ones)
    val: int  # validation photos from "trainval", to choose the converted classifier's threshold
    test: int | None  # photos from "test" (None: all 3,669)
    seed: int = 0  # which photos a subset holds


#: About 0.1-0.3 s a photo for the backbone at 160 px on 2 CPU cores: 700 photos, once.
CPU_SIZE = PetsSize(image_size=160, train=400, val=100, test=200)
#: The full splits at the weights' own 224 px.
GPU_SIZE = PetsSize(image_size=224, train=None, val=368, test=None)


def pets_size(device) -> PetsSize:
    """GPU_SIZE on a CUDA device, CPU_SIZE elsewhere."""
    return GPU_SIZE if torch.device(device).type == "cuda" else CPU_SIZE


def pets_splits(size: PetsSize, root=None) -> dict:
    """{"train", "val", "test"}: (Subset of pets_dataset, its photo names), chosen with size.seed.

    Validation and training photos are disjoint parts of "trainval" (in a small copy of the
    dataset, validation gets a quarter of it, at least one photo); test photos come from "test".
    No split is ever empty: a size asking for none, or a trainval list of fewer than 2 photos, is
    a ValueError (PetsDataError naming the list file).
    """
    for name, count in (("train", size.train), ("val", size.val), ("test", size.test)):
        if (count is not None or name == "val") and (type(count) is not int or count < 1):
            if name == "val":
                message = tr(
                    "PetsSize.{name} must be a number of photos, at least one, got {count!r}", name=name, count=count
                )
            else:
                message = tr(
                    "PetsSize.{name} must be a number of photos, at least one (or None for all), got {count!r}",
                    name=name,
                    count=count,
                )
            raise ValueError(message)
    trainval, test = (pets_dataset(split, size.image_size, root) for split in ("trainval", "test"))
    if len(trainval) < 2:
        raise PetsDataError(
            trainval.split_file,
            tr(
                "lists {count} photo: notebook 6 needs at least 2 (1 to validate on, 1 to train on)",
                count=len(trainval),
            ),
            trainval.folder,
        )
    order = torch.randperm(len(trainval), generator=torch.Generator().manual_seed(size.seed)).tolist()
    num_val = max(1, min(size.val, len(trainval) // 4))
    num_train = len(trainval) - num_val if size.train is None else min(size.train, len(trainval) - num_val)
    test_order = torch.randperm(len(test), generator=torch.Generator().manual_seed(size.seed)).tolist()
    chosen = {
        "train": (trainval, order[num_val : num_val + num_train]),
        "val": (trainval, order[:num_val]),
        "test": (test, test_order[: size.test] if size.test is not None else list(range(len(test)))),
    }
    names = {dataset: image_ids(dataset) for dataset in (trainval, test)}
    return {split: (Subset(data, idx), [names[data][i] for i in idx]) for split, (data, idx) in chosen.items()}


# ---------------------------------------------------------------------------- the classifier


@dataclass(frozen=True)
class HeadRecipe:
    """How a head is trained on cached features: AdamW with a one-cycle schedule (train.fit)."""

    epochs: int
    lr: float
    batch_size: int
    weight_decay: float = 1e-4
    seed: int = 0


#: A linear probe: one layer on 512 features, the usual AdamW at 1e-3 for a few epochs.
CLASSIFIER_HEAD = HeadRecipe(epochs=10, lr=1e-3, batch_size=32)
#: Each FCN stage: its 1x1 scorers and upsamplers (a few thousand weights) on the trimaps.
FCN_HEAD = HeadRecipe(epochs=4, lr=3e-3, batch_size=16)


def pretrained_classifier(backbone: VGG11Backbone, num_classes: int = len(SPECIES)) -> VGG11Classifier:
    """VGG11Classifier around a copy of `backbone` (frozen), with a new fc_out (num_classes, 512)."""
    torch.manual_seed(0)  # the same new fc_out every time
    classifier = VGG11Classifier(num_classes=num_classes, width=backbone.width)
    classifier.backbone.load_state_dict(backbone.state_dict())
    classifier.backbone.requires_grad_(False)
    return classifier.to(next(backbone.parameters()).device).eval()


def gap_head(classifier: VGG11Classifier) -> nn.Sequential:
    """The classifier after pool5: pool5 features (N, 512, h, w) -> GAP -> fc_out -> scores (N, K).
    It holds the classifier's own fc_out, so training it trains the classifier."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), classifier.fc_out)


def head_modules(model: nn.Module) -> nn.ModuleDict:
    """The model's trainable parts: every child but the frozen backbone (and the weightless
    pool5). The same modules, not copies: loading or training them changes the model."""
    return nn.ModuleDict({name: child for name, child in model.named_children() if name not in ("backbone", "pool5")})


def _checkpoint(name: str):
    return checkpoint_dir() / "pets" / f"{name}.pt"


def trained_classifier_head(
    classifier: VGG11Classifier, features: dict, features_id: str, recipe: HeadRecipe = CLASSIFIER_HEAD
) -> dict:
    """Train classifier.fc_out on the cached pool5 features (or load it); return its history.

    features_id: names the features (pretrained.feature_cache_path(...).name), part of the
    checkpoint's configuration, so that other features retrain the head.
    """
    data = TensorDataset(features["pool5"].float(), features["labels"])

    def train(_heads) -> dict:
        head = gap_head(classifier)
        return fit(head, data, epochs=recipe.epochs, lr=recipe.lr, batch_size=recipe.batch_size,
                   weight_decay=recipe.weight_decay, seed=recipe.seed)  # fmt: skip

    config = {"features": features_id, "num_classes": classifier.num_classes, **asdict(recipe)}
    return load_or_train(_checkpoint("classifier_head"), head_modules(classifier), config, train)


@torch.no_grad()
def classifier_scores(classifier: VGG11Classifier, features: dict) -> torch.Tensor:
    """Class scores (N, K) from cached pool5 features: exactly classifier(image) for those photos."""
    device = classifier.fc_out.weight.device
    return gap_head(classifier)(features["pool5"].float().to(device)).cpu()


# ---------------------------------------------------------------------------- FCN-32s, 16s, 8s


def fit_fcn_head(fcn: VGG11SkipFCN, features: dict, recipe: HeadRecipe = FCN_HEAD, progress: bool = True) -> dict:
    """Train the FCN's head (head_modules) in place on cached pool3/pool4/pool5 features and their
    masks, with per-pixel cross-entropy (IGNORE_INDEX pixels, the trimaps' borders, not counted).
    Returns {"train_loss": [per epoch], "step_loss": [per step]}."""
    device = next(fcn.parameters()).device
    data = TensorDataset(features["pool3"], features["pool4"], features["pool5"], features["masks"])
    seed_everything(recipe.seed)
    loader = make_loader(data, recipe.batch_size, shuffle=True, seed=recipe.seed)
    heads = head_modules(fcn)
    optimizer, scheduler = make_optimizer(heads, recipe.lr, recipe.epochs * len(loader), recipe.weight_decay)
    history = {"train_loss": [], "step_loss": []}
    with progress_bar(recipe.epochs * len(loader), f"FCN-{fcn.variant}", "batch", disable=not progress) as bar:
        for _ in range(recipe.epochs):
            total = 0.0
            for pool3, pool4, pool5, masks in loader:
                pools = (pool.to(device).float() for pool in (pool3, pool4, pool5))
                scores = fcn.scores_from_features(*pools, masks.shape[-2:])
                loss = F.cross_entropy(scores, masks.to(device).long(), ignore_index=IGNORE_INDEX)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                scheduler.step()
                history["step_loss"].append(loss.item())
                total += loss.item() * len(masks)
                bar.update(1)
            history["train_loss"].append(total / len(data))
    fcn.eval()
    return history


def trained_fcn_heads(
    classifier: VGG11Classifier, features: dict, features_id: str, recipe: HeadRecipe = FCN_HEAD
) -> dict[str, VGG11SkipFCN]:
    """FCN-32s, 16s and 8s on the classifier's frozen backbone, trained in stages as in notebook 5
    (32s from the classifier, 16s from 32s, 8s from 16s), each head loaded from its checkpoint or
    trained with fit_fcn_head. Returns {"32s": fcn, "16s": fcn, "8s": fcn}, in eval mode."""
    fcns, start, config = {}, None, {"features": features_id, **asdict(recipe)}
    for variant in FCN_VARIANTS:
        if start is None:
            fcn = VGG11SkipFCN.from_classifier(classifier, variant)
        else:
            fcn = VGG11SkipFCN.from_coarser(start, variant)
        config = {"variant": variant, "starts_from": config}
        load_or_train(_checkpoint(f"fcn{variant}_head"), head_modules(fcn), config,
                      lambda _heads, fcn=fcn: fit_fcn_head(fcn, features, recipe))  # fmt: skip
        fcns[variant] = start = fcn.eval()
    return fcns


@torch.no_grad()
def fcn_masks(fcn: VGG11SkipFCN, features: dict, batch_size: int = 32) -> torch.Tensor:
    """Predicted masks (N, S, S) int64 (0 background, k + 1 class k) from cached features:
    the argmax of fcn(image) for those photos."""
    device, size = next(fcn.parameters()).device, features["masks"].shape[-2:]
    masks = []
    for start in range(0, len(features["masks"]), batch_size):
        pools = (features[key][start : start + batch_size].to(device).float() for key in ("pool3", "pool4", "pool5"))
        masks.append(fcn.scores_from_features(*pools, size).argmax(dim=1).cpu())
    return torch.cat(masks)


@torch.no_grad()
def converted_scores(fcn: VGG11FCN, features: dict) -> torch.Tensor:
    """Per-pixel class scores (N, K, S, S) of a converted classifier built with keep_pool5=True,
    from cached pool5 features: conv_out (the classifier's fc_out as a 1x1 convolution), then
    bilinear upsampling to S x S. Exactly fcn(image) for those photos."""
    if not fcn.keep_pool5:
        raise ValueError(tr("converted_scores reads pool5 features: build the FCN with keep_pool5=True"))
    device, size = fcn.conv_out.weight.device, tuple(features["masks"].shape[-2:])
    scores = fcn.conv_out(features["pool5"].to(device).float())
    return F.interpolate(scores, size=size, mode="bilinear", align_corners=False).cpu()


def threshold_candidates(scores: torch.Tensor, count: int = 21) -> list[float]:
    """`count` thresholds for segment.choose_threshold, spread over the range of the best class
    score per pixel (its 2nd to 98th percentile): the scale of a classifier's scores is its own."""
    best = scores.max(dim=1).values.flatten()
    best = best[torch.randperm(len(best), generator=torch.Generator().manual_seed(0))[:1_000_000]]
    low, high = torch.quantile(best, torch.tensor([0.02, 0.98])).tolist()
    return [round(v, 3) for v in torch.linspace(low, high, count).tolist()]
