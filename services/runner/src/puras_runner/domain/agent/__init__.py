"""The agent runtime's pure part: the conversation, the loop's decisions, its limits."""
