"""Phone calls on the hub's side: arrival, ringing plans, leg events, outcomes, transfers, wrap-up."""

from hub.calls.desk import CallControl, CallDesk, CallPlan, IncomingCall, TransferPlan
from hub.calls.legs import LegUpdate

__all__ = ["CallControl", "CallDesk", "CallPlan", "IncomingCall", "LegUpdate", "TransferPlan"]
