"""LIME explanations (the `lime` package's image explainer) for held-out images."""

import os

import numpy as np

from fer_kaggle.diagnostics.plots import as_rgb, figure, save


def explain(model, images, num_samples=300, seed=0, progress=None):
    """For each uint8 (h, w, c) image: (predicted class, an (h, w) mask of the superpixels supporting it)."""
    os.environ.setdefault("TQDM_DISABLE", "1")  # lime's own progress bar: ours is one line per image
    from lime import lime_image
    from lime.wrappers.scikit_image import SegmentationAlgorithm

    gray = model.input_shape[-1] == 1

    def classify(rgb_batch):
        batch = np.asarray(rgb_batch, dtype="float32")
        batch = batch.mean(axis=-1, keepdims=True) if gray else batch
        return np.asarray(model.predict(batch, batch_size=256, verbose=0))

    explainer = lime_image.LimeImageExplainer(random_state=seed)
    segmenter = SegmentationAlgorithm("slic", n_segments=40, compactness=10, start_label=0, channel_axis=-1)
    results = []
    for i, image in enumerate(images):
        rgb = as_rgb(image) * 255.0
        explanation = explainer.explain_instance(rgb, classify, top_labels=1, hide_color=0, num_samples=num_samples,
                                                 segmentation_fn=segmenter, random_seed=seed, batch_size=num_samples)
        label = explanation.top_labels[0]
        _, mask = explanation.get_image_and_mask(label, positive_only=True, num_features=5, hide_rest=False)
        results.append((int(label), mask.astype(bool)))
        if progress:
            progress(f"LIME: image {i + 1}/{len(images)}")
    return results


def plot_lime(images, results, true, class_names, path):
    from skimage.segmentation import mark_boundaries

    n = len(images)
    cols = 6
    fig, axes = figure("grid", nrows=(n + cols - 1) // cols, ncols=cols, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, img, (label, mask), t in zip(axes.ravel(), images, results, true):
        rgb = as_rgb(img)
        ax.imshow(mark_boundaries(rgb, mask.astype(int), color=(1, 0.8, 0)))
        ax.set_title(f"true {class_names[t]}\nexplains {class_names[label]}", fontsize=7)
    fig.suptitle("LIME: superpixels supporting the predicted class (outlined)")
    return save(fig, path)
