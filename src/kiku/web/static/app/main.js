  // ---------------------------------------------------------------- go
  window.kiku = { state: S, selectCluster, openConversation, addFilter, runSearch, setTab, map: M, nearest, toScreenX, toScreenY, drawMap, update, priorities: { open: openPriorities, close: closePriorities, state: P } };
  // The markup and the data block precede this script in both modes (deferred when served;
  // inline before the conversation chunks in the export), so start without waiting for the
  // rest of a large export file to be parsed.
  initPriorities();
  start();
