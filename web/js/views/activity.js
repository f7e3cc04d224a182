// activity.js - the subscription's Activity Log.
import { h } from '../ui.js';
import { activityPanel } from './monitor.js';

export function activityView() {
  const p = activityPanel(null, 'Events of the last 30 days');
  return { el: h('div', {}, h('h1', {}, 'Activity log'), p.el), refresh: p.refresh };
}
