"""The runner's handlers: the run flow of one work item, and the consume loop."""
