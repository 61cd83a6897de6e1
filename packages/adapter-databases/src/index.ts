export {
  type DatabasesPoolLike,
  type DatabasesQueryableLike,
  type DatabasesSqlLike,
  databasesAdapter,
} from './databases-adapter.js'
