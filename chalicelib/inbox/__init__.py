"""The citizens' inbox: messages from every channel threaded into conversations, staff answers,
response-time figures, SLA checks and GDPR export/erasure (issue 5, notes/inbox-design.md)."""
