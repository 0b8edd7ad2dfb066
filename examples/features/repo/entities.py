"""The entity every feature here describes: a customer, by its integer id."""

from shipyard.features import Entity

customer = Entity("customer", ["customer_id"], description="someone who buys from the shop")
