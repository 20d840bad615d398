"""Live messaging over ZeroMQ: the publisher, its journal and side channel, subscribers,
the multi-camera relay and CURVE security. Wire format: :mod:`gaitlive.publish.messages`
and ``docs/messages.md``.

Importing this package is cheap; nothing starts until a class is used.
"""

from __future__ import annotations

from gaitlive.publish.messages import Message, MessageError, decode
from gaitlive.publish.publisher import Publisher, PublishError
from gaitlive.publish.subscriber import Subscriber, iter_messages

__all__ = ["Message", "MessageError", "decode", "Publisher", "PublishError", "Subscriber",
           "iter_messages"]
