"""Phone calls on the hub's side: arrival, ringing, leg events, outcomes, the queue, transfers, wrap-up."""

from hub.calls.callbacks import CallbackCall
from hub.calls.desk import CallControl, CallDesk, CallPlan, IncomingCall, QueuePickup, TransferPlan
from hub.calls.legs import LegUpdate

__all__ = [
    "CallControl",
    "CallDesk",
    "CallPlan",
    "CallbackCall",
    "IncomingCall",
    "LegUpdate",
    "QueuePickup",
    "TransferPlan",
]
