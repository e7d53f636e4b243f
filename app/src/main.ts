import { mount } from 'svelte';
import App from './App.svelte';
import './app.css';
import { startServiceWorker } from './pwa.js';
import { loadInferenceClient } from './llm/lazy.js';

const target = document.getElementById('app');
if (!target) throw new Error('#app is missing from index.html');
target.textContent = '';
mount(App, { target });
window.hearthnetInference = loadInferenceClient;
startServiceWorker();
