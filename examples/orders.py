"""The DESIGN §2 example: ship every placed order. Run: herald up --load examples/orders.py"""

import herald


class OrderPlaced(herald.Message, type="acme.order.placed"):
    order_id: str
    amount: float


class OrderShipped(herald.Message, type="acme.order.shipped"):
    order_id: str


@herald.sensor(on=OrderPlaced, where=lambda m: m.amount > 0)
def ship(msg: OrderPlaced, ctx: herald.SensorContext):
    return OrderShipped(order_id=msg.order_id)  # returned messages are emitted, caused by msg
