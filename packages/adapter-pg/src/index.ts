export {
  type PgAdapterOptions,
  type PgClientLike,
  type PgPoolClientLike,
  type PgPoolLike,
  pgAdapter,
} from './pg-adapter.js'
export {
  canCancel,
  isPgConnectionError,
  markSessionEnd,
  type PgCancelTarget,
  pgSqlState,
  sendCancelRequest,
} from './pg-protocol.js'
