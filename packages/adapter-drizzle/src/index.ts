export {
  type DrizzleAdapter,
  type DrizzleAdapterOptions,
  type DrizzleDatabaseLike,
  type DrizzleTransactionLike,
  drizzleAdapter,
} from './drizzle-adapter.js'
