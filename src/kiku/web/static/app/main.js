  // ---------------------------------------------------------------- go
  window.kiku = { state: S, selectCluster, openConversation, closeConversation, addFilter, runSearch, setTab, setColorBy, selectBox, clearRegion,
    registerView, map: M, nearest, toScreenX, toScreenY, drawMap, update };
  // The markup and the data block precede this script in both modes (deferred when served;
  // inline before the conversation chunks in the export), so start without waiting for the
  // rest of a large export file to be parsed.
  start();
