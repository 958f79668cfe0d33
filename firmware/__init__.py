"""What a meter does, whatever carries the bytes: metrology, tariff, prepaid
credit, relay, STS tokens, profiles, storage. Pure logic; time is passed in."""
