"""Department push (行业反哺): sector systems feed the ledger items they own (docs/push.md)."""
