"""`fer-kaggle report`: every figure as a PNG under reports/, and one offline index.html."""

import html
import time
from pathlib import Path

import numpy as np

from fer_kaggle import atomic, layout
from fer_kaggle.data.folds import FOLDS_META
from fer_kaggle.progress import clock
from fer_kaggle.diagnostics import compare, confusion, curves, filters, lime_explain, saliency, taught, tta_views
from fer_kaggle.errors import ConfigError
from fer_kaggle.rows import rows_of

FIGURES = ("confusion", "misclassified", "curves", "compare", "ablations", "taught", "tta", "saliency", "filters",
           "lime")


class Report:
    """Builds the figures of one variant (or blend) of `oof_dir` into `out_dir`."""

    def __init__(self, comp, folds, oof_dir="oof", out_dir="reports", target=None, progress=print,
                 per_class=2, lime_samples=300, ascent_steps=60):
        self.comp, self.folds, self.oof_dir, self.out_dir = comp, folds, Path(oof_dir), Path(out_dir)
        self.progress, self.per_class, self.lime_samples, self.ascent_steps = progress, per_class, lime_samples, ascent_steps
        self.target = target or self._best()
        self.target_dir = self.oof_dir / self.target
        if not layout.is_finished(self.target_dir):
            raise ConfigError(f"{self.target_dir} holds no finished predictions: name a finished variant or blend "
                              f"(see `fer-kaggle leaderboard`)")
        from fer_kaggle.assembly import covered_rows

        probs, _, self.metrics = layout.read_predictions(self.target_dir)
        self.rows = covered_rows(probs)  # every training row, or a holdout variant's
        self.probs, self.y = probs[self.rows], comp.y_train[self.rows]
        self.sections = []  # (figure name, title, [(png, caption)], html)
        self._models = {}

    def _best(self):
        from fer_kaggle.leaderboard import leaderboard_rows

        rows = leaderboard_rows(self.oof_dir, self.comp.spec.metric)
        if not rows:
            raise ConfigError(f"no finished variants in {self.oof_dir}/: run `fer-kaggle cv` first")
        return rows[0]["name"]

    @property
    def model_variant(self):
        """The variant whose fold models the model-based figures use: the target itself, or
        the member of a blend with the largest weight (the most accurate member when the
        blend has no weights per member, as a stack)."""
        if layout.read_config(self.target_dir) is not None:
            return self.target
        weights = self.metrics.get("weights", {})
        members = [m for m in self.metrics.get("members", []) if layout.is_finished(self.oof_dir / m)]
        if not members:
            raise ConfigError(f"blend {self.target} records no members with finished CV")
        if all(m in weights for m in members):
            return max(members, key=lambda m: weights[m])
        return max(members, key=lambda m: layout.read_metrics(self.oof_dir / m)["accuracy"])

    @property
    def cnn_variant(self):
        """The variant for the CNN-only figures: the model variant when it is a CNN trained by
        epochs (not a DNN, not a linear probe), else the best finished such CNN on the
        leaderboard (None when there is none)."""
        from fer_kaggle.leaderboard import leaderboard_rows

        candidates = [self.model_variant] + [r["name"] for r in leaderboard_rows(self.oof_dir)]
        for name in candidates:
            config = layout.read_config(self.oof_dir / name)
            if config is not None and not config["model"].startswith("dnn") and not _is_probe(config):
                return name
        return None

    def make(self, only=None):
        unknown = set(only or ()) - set(FIGURES)
        if unknown:
            raise ConfigError(f"unknown figure {sorted(unknown)[0]!r}; choose from {', '.join(FIGURES)}")
        names = list(only or FIGURES)
        started = time.perf_counter()
        for i, name in enumerate(names):
            left = f", about {clock((time.perf_counter() - started) / i * (len(names) - i))} left" if i else ""
            self.progress(f"report: {name} ({i + 1}/{len(names)} figures{left})")
            getattr(self, f"_{name}")()
        self.write_index()
        return self.sections

    # ------------------------------------------------------------------ figures

    def _png(self, name):
        return self.out_dir / f"{name}.png"

    def _confusion(self):
        names, y = self.comp.class_names, self.y
        counts = confusion.confusion_counts(y, self.probs, len(names))
        png = confusion.plot_confusion(counts, names, f"{self.target} (OOF)", self._png("confusion"))
        table = confusion.per_class_table(y, self.probs, names)
        pairs = confusion.most_confused_pairs(counts, names)
        body = _table(["class", "precision", "recall", "F1", "support"],
                      [[r["class"], f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", r["support"]] for r in table])
        body += "<p>Most confused (true &rarr; predicted):</p>" + _table(
            ["true", "predicted", "count", "share of true class"], [[t, p, n, f"{s:.1%}"] for t, p, n, s in pairs])
        self.sections.append(("confusion", "Confusion matrix", [(png, f"Confusion matrix of {self.target} on its "
                              "out-of-fold predictions: counts, and rows normalized to the true class.")], body))
        atomic.write_json(self.out_dir / "confusion.json", {"target": self.target, "counts": counts.tolist(),
                                                            "classes": list(names), "per_class": table})

    def _misclassified(self):
        png = confusion.plot_misclassified(rows_of(self.comp.x_train, self.rows), self.y, self.probs,
                                           self.comp.class_names, self._png("misclassified"))
        self.sections.append(("misclassified", "Misclassified images", [(png, "Held-out images the OOF predictions "
                              "get wrong, with the true label, the predicted label and its probability.")], ""))

    def _curves(self):
        variant = self.model_variant
        if _is_probe(layout.read_config(self.oof_dir / variant)):
            png = curves.plot_strengths(curves.fold_histories(self.oof_dir / variant), self._png("curves"),
                                        f"{variant}: the linear probe's strength, chosen by inner CV")
            self.sections.append(("curves", "Training curves", [(png, f"{variant} is a linear probe: it trains no "
                                  "epochs; each fold chose the strength of its logistic regression by an inner CV on "
                                  "its training rows, whose accuracy per strength is shown.")], ""))
            return
        png = curves.plot_curves({variant: curves.fold_histories(self.oof_dir / variant)}, self._png("curves"),
                                 f"Training curves of {variant}")
        self.sections.append(("curves", "Training curves", [(png, f"Loss and accuracy per epoch of every fold of "
                              f"{variant}: validation (held-out fold) against training.")], ""))

    def _compare(self):
        cnn = self.cnn_variant
        if cnn is None:
            self.sections.append(("compare", "CNN against a DNN of the same parameter count", [],
                                  "<p>No finished CNN variant to compare.</p>"))
            return
        cnn_summary, cnn_history = compare.fold0_summary(self.oof_dir / cnn)
        dnn_dir = compare.matched_dnn(self.oof_dir, cnn_summary["params"])
        if dnn_dir is not None:
            dnn_name = dnn_dir.name
            dnn_summary, dnn_history = compare.fold0_summary(dnn_dir)
        else:
            dnn_name = f"dnn matched to {cnn}"
            folds_meta = atomic.read_json(self.oof_dir / FOLDS_META)
            dnn_dir = compare.train_matched_dnn(self.oof_dir / cnn, self.comp, self.folds, folds_meta,
                                                self.out_dir / "matched_dnn" / cnn, self.progress)
            dnn_summary, dnn_history = compare.fold0_summary(dnn_dir)
        png = curves.plot_curves({cnn: [cnn_history], dnn_name: [dnn_history]}, self._png("compare"),
                                 f"CNN {cnn} against a DNN of the same size, fold 1")
        rows = [[n, f"{s['params']:,}", f"{s['accuracy']:.4f}", f"{s['log_loss']:.4f}", f"{s['seconds_per_epoch']:.1f}"]
                for n, s in ((cnn, cnn_summary), (dnn_name, dnn_summary))]
        body = _table(["model", "parameters", "fold-1 accuracy", "fold-1 log loss", "seconds per epoch"], rows)
        self.sections.append(("compare", "CNN against a DNN of the same parameter count",
                              [(png, "Validation curves on fold 1's held-out rows, same training settings.")], body))

    def _ablations(self):
        rows = compare.ablations(self.oof_dir)
        body = _table(["setting", "value", "run", "accuracy", "log loss", "other value", "other run", "accuracy",
                       "log loss"],
                      [[k, va, na, f"{aa:.4f}", f"{la:.4f}", vb, nb, f"{ab:.4f}", f"{lb:.4f}"]
                       for k, va, na, aa, la, vb, nb, ab, lb in rows]) if rows else (
            "<p>No two finished runs differ in exactly one setting. Train one with a setting changed, e.g. "
            "<code>fer-kaggle cv --variants NAME --set flip=false --tag noflip</code>.</p>")
        self.sections.append(("ablations", "Ablations", [], body))

    def _taught(self):
        """Pseudo-labeling and distillation: OOF accuracy before and after, the label-fraction plot."""
        figures, body = [], ""
        png = taught.plot_label_fractions(self.oof_dir, self._png("label_fractions"))
        if png:
            figures.append((png, "The label-fraction experiment: OOF accuracy of each fraction's supervised-only "
                                 "variant and of the same variant with its unlabeled pool pseudo-labeled."))
        pseudo = taught.pseudo_rows(self.oof_dir)
        if pseudo:
            body += _table(["variant", "before", "label fraction", "accuracy before", "accuracy", "gain",
                            "log loss before", "log loss", "teacher accuracy", "admitted per fold"], pseudo)
        distilled = taught.distill_rows(self.oof_dir)
        if distilled:
            body += _table(["student", "teacher accuracy", "student accuracy", "on labels alone",
                            "teacher images/s", "student images/s", "speed-up"], distilled)
        if not body:
            body = ("<p>No pseudo-labeled or distilled variants yet: <code>make pseudo</code>, "
                    "<code>make pseudo FRACTIONS=0.1,0.25</code>, <code>make distill</code>.</p>")
        self.sections.append(("taught", "Pseudo-labels and distillation", figures, body))

    def _tta(self):
        variant, model, valid_rows, x = self._fold0_model()
        rows = tta_views.tta_rows(model, rows_of(x, valid_rows), self.comp.y_train[valid_rows])
        trained = layout.read_config(self.oof_dir / variant)["train"]["tta"]
        body = _table(["views", "count", "accuracy", "log loss", "seconds per 1,000 images"],
                      [[t + (" (trained with)" if t == trained else ""), n, f"{a:.4f}", f"{ll:.4f}", f"{s:.2f}"]
                       for t, n, a, ll, s in rows])
        atomic.write_json(self.out_dir / "tta.json", {"variant": variant, "fold": 0, "rows": len(valid_rows),
                                                      "views": [dict(zip(("tta", "views", "accuracy", "log_loss",
                                                                          "seconds_per_1000"), r)) for r in rows]})
        self.sections.append(("tta", "Test-time augmentation", [], f"<p>{html.escape(variant)}'s fold-1 model on its "
                              f"{len(valid_rows)} held-out rows, each set of views (the same model and rows: the "
                              f"differences are paired).</p>" + body))

    def _fold0_model(self, variant=None):
        """(variant, its fold-0 model, fold 0's held-out rows, the training images at the size
        the model takes: the competition's, or a pretrained network's own), loaded once per variant."""
        from fer_kaggle.shipped import load_model

        variant = variant or self.model_variant
        if variant not in self._models:
            model = load_model(self.oof_dir / variant / "fold0" / "model.keras")
            with np.load(self.oof_dir / variant / "fold0" / "rows.npz") as rows:
                images = self.comp.at_size(*model.input_shape[1:3]).x_train
                self._models[variant] = (variant, model, rows["valid_rows"], images)
        return self._models[variant]

    def _saliency(self):
        variant, model, valid_rows, x = self._fold0_model()
        rows = saliency.pick_held_out(valid_rows, self.comp.y_train, 1, len(self.comp.class_names))
        images, true = x[rows], self.comp.y_train[rows]
        maps = saliency.saliency_maps(model, images, true)
        pred = np.asarray(model.predict(np.asarray(images).astype("float32"), verbose=0)).argmax(axis=1)
        png = saliency.plot_saliency(images, maps, true, pred, self.comp.class_names, self._png("saliency"),
                                     f"Saliency of {variant}'s fold-1 model on its held-out rows")
        atomic.write_json(self.out_dir / "saliency.json", {"variant": variant, "fold": 0, "rows": rows.tolist()})
        self.sections.append(("saliency", "Saliency maps", [(png, "Gradient of the log-probability of the true class "
                              "with respect to each pixel, for one held-out image per class: image, map, overlay.")], ""))

    def _filters(self):
        if self.cnn_variant is None:
            self.sections.append(("filters", "Filters", [], "<p>No finished CNN variant: no filters to show.</p>"))
            return
        from fer_kaggle.models.pretrained import backbone_of, to_backbone

        variant, model, valid_rows, x = self._fold0_model(self.cnn_variant)
        net, image, within = model, x[valid_rows[0]], ""
        if backbone_of(model) is not None:  # a pretrained network: a layer of its backbone, at the backbone's side
            net, within = backbone_of(model), " of its pretrained backbone, fine-tuned"
            image = np.asarray(to_backbone(model)(np.asarray(image)[None].astype("float32")))[0]
        layers = filters.conv_layers(net)
        if not layers:
            self.sections.append(("filters", "Filters", [], f"<p>{html.escape(variant)}'s network has no convolution "
                                  "layers at its top level to show.</p>"))
            return
        layer = layers[min(len(layers) - 1, max(1, len(layers) // 3))]
        n = min(16, net.get_layer(layer).output.shape[-1])
        images = filters.maximize_filters(net, layer, list(range(n)), steps=self.ascent_steps, progress=self.progress)
        png = filters.plot_filters(images, list(range(n)), layer, self._png("filters"))
        act_png = filters.plot_activations(net, layer, image, self._png("activations"))
        self.sections.append(("filters", f"Filters of {layer}", [
            (png, f"Inputs that maximize the mean activation of the first {n} filters of {layer}{within} ({variant}, "
                  "fold 1), found by gradient ascent from noise with decay, blur and jitter."),
            (act_png, f"The activations of {layer} for one held-out image.")], ""))

    def _lime(self):
        variant, model, valid_rows, x = self._fold0_model()
        rows = saliency.pick_held_out(valid_rows, self.comp.y_train, self.per_class, len(self.comp.class_names), seed=1)
        images = x[rows]
        results = lime_explain.explain(model, images, num_samples=self.lime_samples, progress=self.progress)
        png = lime_explain.plot_lime(images, results, self.comp.y_train[rows], self.comp.class_names, self._png("lime"))
        self.sections.append(("lime", "LIME explanations", [(png, f"LIME ({self.lime_samples} perturbed samples per "
                              f"image) on held-out images of {variant}'s fold-1 model: the superpixels that most "
                              "support the predicted class.")], ""))

    # ------------------------------------------------------------------ page

    def write_index(self):
        from fer_kaggle.leaderboard import leaderboard_rows

        spec = self.comp.spec
        board = leaderboard_rows(self.oof_dir, spec.metric)
        shape = f"{spec.height}x{spec.width} {'grayscale' if spec.channels == 1 else 'RGB'}"
        parts = [f"<h1>fer-kaggle report: {html.escape(self.target)}</h1>",
                 f"<p>Data: {html.escape(spec.competition or self.comp.source)} ({len(self.comp.y_train)} training "
                 f"images, {shape}, {spec.num_classes} classes; metric {html.escape(spec.metric)}). Every figure "
                 "is computed from out-of-fold predictions or rows the model never trained on.</p>",
                 "<h2>Leaderboard</h2>",
                 _table(["name", "kind", spec.metric, "accuracy", "log loss", "fold sd", "params", "fit s"],
                        [[r["name"], r["kind"], _num(r["score"]) if r["metric"] == spec.metric else "",
                          _num(r["accuracy"]), _num(r["log_loss"]), _num(r["fold_accuracy_std"]), r["params"],
                          r["fit_seconds"]] for r in board])]
        for _, title, figures, body in self.sections:
            parts.append(f"<h2>{html.escape(title)}</h2>")
            for png, caption in figures:
                parts.append(f'<figure><img src="{html.escape(png.name)}" alt="{html.escape(title)}">'
                             f"<figcaption>{html.escape(caption)}</figcaption></figure>")
            parts.append(body)
        page = PAGE.replace("{body}", "\n".join(parts)).replace("{title}", html.escape(self.target))
        atomic.write_text(self.out_dir / "index.html", page)
        return self.out_dir / "index.html"


def _num(value):
    return f"{value:.4f}" if isinstance(value, float) else value


def _is_probe(config):
    """Whether a variant's config is a linear probe's (recipe "probe"): its folds fit a classifier
    on frozen features, no epochs."""
    return config is not None and config["train"].get("recipe") == "probe"


def _table(header, rows):
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>fer-kaggle report: {title}</title>
<style>
body { font-family: sans-serif; max-width: 1250px; margin: 2em auto; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th { background: #f0f0f0; } td:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #ddd; }
figcaption { color: #555; font-size: 0.9em; }
</style></head>
<body>
{body}
<script>
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  document.body.setAttribute("data-images", images.length);
  document.body.setAttribute("data-loaded", images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length);
});
</script>
</body></html>
"""
