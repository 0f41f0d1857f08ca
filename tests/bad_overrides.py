"""Command-line overrides with a bad value, each with the error text it must give: ``WRONG_TYPES`` (a value
of the wrong type) and ``INVALID`` (a value out of range, not one of the choices, or unusable)."""

from __future__ import annotations

WRONG_TYPES = [
    ("seed=abc", "seed='abc' has the wrong type: expected an integer"),
    ("trainer.max_epochs=many", "trainer.max_epochs='many' has the wrong type"),
    ("loss=focal loss.gamma=high", "loss.gamma='high' has the wrong type: expected a number"),
    ("test=maybe", "test='maybe' has the wrong type: expected true or false"),
    ("model.dropout=[0.1,0.2]", "model.dropout=[0.1, 0.2] has the wrong type: expected a number"),
    (
        "callbacks=early_stopping callbacks.early_stopping.patience=[1,2]",
        "patience=[1, 2] has the wrong type",
    ),
    ("data.standardize=maybe", "data.standardize='maybe' has the wrong type: expected true or false"),
    ("callbacks=early_stopping callbacks.early_stopping.patience=few", "patience='few' has the wrong type"),
]
#: ``optim=sgd`` with ``ReduceLROnPlateau`` as its schedule
PLATEAU = (
    "optim=sgd optim.scheduler._target_=torch.optim.lr_scheduler.ReduceLROnPlateau ~optim.scheduler.T_max"
)
INVALID = [
    ("loss=focal loss.gamma=-1", "loss.gamma=-1 is out of range: expected a finite value in [0, inf)"),
    ("loss=huber loss.delta=0", "loss.delta=0 is out of range: expected a finite value in (0, inf)"),
    ("loss=ldam loss.s=inf", "loss.s=inf is out of range: expected a finite value in (0, inf)"),
    ("loss=focal loss.gamma=nan", "loss.gamma=nan is out of range: expected a finite value in [0, inf)"),
    ("loss=focal loss.alpha=[1,nan,1]", "loss.alpha=[1, nan, 1] is out of range: expected finite values"),
    ("loss=ce loss.weight=[-1,1,1]", "loss.weight=[-1, 1, 1] is out of range: expected finite values ≥ 0"),
    ("loss=focal loss.alpha=[1,2]", "loss.alpha has 2 weights but the data set has 10 classes"),
    ("loss=ldam loss.drw_epoch=1.5", "loss.drw_epoch=1.5 is not a whole epoch: give an integer"),
    ("loss=bce loss.pos_weight=0", "loss.pos_weight=0 is out of range: expected finite values > 0"),
    (
        "loss=ce loss.label_smoothing=1.0",
        "loss.label_smoothing=1.0 is out of range: expected a finite value in [0, 1)",
    ),
    ("loss=ce loss.reduction=median", "loss.reduction='median' is not valid: choose one of mean, sum, none"),
    (
        "loss=quantile data=diabetes loss.q=1.5",
        "loss.q=1.5 is out of range: expected a finite value in (0, 1)",
    ),
    ("loss=gce loss.q=0", "loss.q=0 is out of range: expected a finite value in (0, 1]"),
    ("loss=class_balanced loss.beta=1.0", "loss.beta=1.0 is out of range: expected a finite value in [0, 1)"),
    ("loss=ce loss.reduction=none", "loss.reduction='none' gives one loss per sample"),
    (
        "nonfinite_check.every_n_steps=0",
        "nonfinite_check.every_n_steps=0 is out of range: expected a finite value in [1, inf)",
    ),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val=-1 is out of range"),
    ("trainer.gradient_clip_algorithm=max", "trainer.gradient_clip_algorithm='max' is not valid"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches=0 is out of range"),
    ("optim=sgd optim.optimizer.momentum=1.5", "optim.optimizer.momentum=1.5 is out of range"),
    ("optim.optimizer.weight_decay=-1", "optim.optimizer.weight_decay=-1 is out of range"),
    ("+optim.optimizer.betas=[0.9,1.2]", "optim.optimizer.betas[1]=1.2 is out of range"),
    ("optim=sgd optim.scheduler.T_max=0", "optim.scheduler.T_max=0 is out of range"),
    (
        "optim=sgd trainer.max_epochs=-1 +trainer.max_steps=50",
        "optim.scheduler.T_max=-1 is out of range: a schedule needs at least 1 step (it is "
        "${trainer.max_epochs}: set optim.scheduler.T_max itself)",
    ),
    ("optim=sgd_warmup_multistep optim.scheduler.gamma=0", "optim.scheduler.gamma=0 is out of range"),
    (  # schedule keys on top of an optim's null schedule
        "+optim.scheduler={warmup_epochs:0,milestones:[150,250]}",
        "optim.scheduler holds warmup_epochs, milestones but no _target_",
    ),
    (
        "optim=sgd optim.scheduler_interval=step",
        "optim.scheduler_interval=step steps the schedule after every optimizer step, but optim.scheduler's "
        "T_max=${trainer.max_epochs} count epochs",
    ),
    (
        "optim=sgd_warmup_multistep optim.scheduler_interval=step",
        "warmup_epochs=5, milestones=[160, 180] count",
    ),
    (
        PLATEAU + " +trainer.check_val_every_n_epoch=2",
        "trainer.check_val_every_n_epoch=2 computes every 2 epochs only",
    ),
    (
        PLATEAU + " optim.scheduler_interval=step",
        "ReduceLROnPlateau follows monitor.metric, a validation metric the first training steps do not have",
    ),
    ("callbacks=early_stopping callbacks.early_stopping.min_delta=-1", "min_delta=-1 is out of range"),
    (
        "trainer.precision=16-mixed",
        "trainer.precision=16-mixed needs a GPU (float16 autocast is not supported",
    ),
    ("monitor.mode=maximum", "monitor.mode='maximum' is not valid: choose min, max, or null"),
    ("model.dropout=1.5", "model.dropout=1.5 is out of range: expected a finite value in [0, 1)"),
    ("model.hidden_dims=[-5]", "model.hidden_dims=[-5] is not valid: give a list of positive integers"),
    ("model.hidden_dims=abc", "model.hidden_dims='abc' is not valid: give a list of positive integers"),
    ("model=cnn data.as_images=true model.hidden=0", "model.hidden=0 is not valid: give a positive integer"),
    ("trainer.precision=8", "trainer cannot be built: ValueError: Precision 8 is invalid"),
    ("callbacks.rich_progress_bar.every_n_batches=0", "callbacks.rich_progress_bar.every_n_batches=0 is out"),
    (
        "+trainer.max_epoch=3",
        "trainer.max_epoch is not an argument of lightning.pytorch.Trainer: did you mean trainer.max_epochs?",
    ),
    (
        "callbacks=early_stopping +callbacks.early_stopping.wait=2",
        "callbacks.early_stopping.wait is not an argument of lightning.pytorch.callbacks.EarlyStopping: "
        "remove it (~callbacks.early_stopping.wait)",
    ),
]
