// class-transformer's metadata storage (the one its decorators write to): the package types it
// but declares no module for the path.
declare module 'class-transformer/cjs/storage.js' {
  export { defaultMetadataStorage } from 'class-transformer/types/storage.js';
}
