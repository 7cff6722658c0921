// The whole farm in one import, for tools that run every part of it (the `atelier` CLI,
// atelier-chaos, the fuzz targets). The parts are separate targets so that each links only what
// it needs: a coordinator links no engine, TLS would touch only the transport. Code that needs one
// part imports that part (AtelierFarmProtocol, AtelierFarmTransport, AtelierFarmCoordinator,
// AtelierFarmWorker), as the farm's own targets do.
@_exported import AtelierFarmCoordinator
@_exported import AtelierFarmProtocol
@_exported import AtelierFarmTransport
@_exported import AtelierFarmWorker
