"""Paper and live trading: feeds, brokers, order management, positions, the live engine."""
