"""Pure broker topology: names, retry schedules and the consumer contract. No I/O here."""
