"""Variants taught by other variants: pseudo-labels on unlabeled images, distillation into one
model, and the models that predict new images. Each new variant trains in `cv` like any other,
on the `inputs.npz` this package writes for each of its folds, so its OOF stays honest: what
fold k trains on comes only from fold-k models, which never saw fold k's rows.

- teacher: an ensemble's fold-k models as one teacher; members' predictions of any images
- pseudo: confidence threshold from the OOF, pseudo-labeled rounds, the label-fraction experiment
- distill: a student on a teacher's soft targets, and one final model to ship
"""
